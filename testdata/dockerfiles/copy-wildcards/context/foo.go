package context // foo-contents
