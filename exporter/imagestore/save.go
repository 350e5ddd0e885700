package imagestore

import "github.com/builderdev/builder/exporter"

// SaveSet resolves the images to save, once each with every name it was
// asked by (an image asked by ID keeps all its names), in order.
func (s *Store) SaveSet(refs []string) ([]exporter.NamedImage, error) {
	var out []exporter.NamedImage
	at := map[string]int{}
	for _, ref := range refs {
		im, err := s.Get(ref)
		if err != nil {
			return nil, err
		}
		names := im.Names
		if full, err := exporter.NormalizeName(ref); err == nil {
			names = []string{full} // docker save NAME keeps only that name
		}
		if i, ok := at[im.ID.String()]; ok {
			out[i].Names = append(out[i].Names, names...)
			continue
		}
		if im.Platforms != nil { // a multi-platform image: its index
			imgs, err := s.LoadAll(im)
			if err != nil {
				return nil, err
			}
			at[im.ID.String()] = len(out)
			out = append(out, exporter.NamedImage{Platforms: imgs, Names: append([]string(nil), names...)})
			continue
		}
		img, err := s.Load(im)
		if err != nil {
			return nil, err
		}
		at[im.ID.String()] = len(out)
		out = append(out, exporter.NamedImage{Image: img, Names: append([]string(nil), names...)})
	}
	return out, nil
}
