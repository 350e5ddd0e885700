package files // foo.go-contents
