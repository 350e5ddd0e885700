package context // bar-contents
