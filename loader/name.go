package loader

// ValidName reports whether name is one a manifest's name key accepts: 1-64
// of a-z 0-9 . _ -, starting with a letter or digit. A manifest that names
// it passes that check, and only that one.
func ValidName(name string) bool { return namePattern.match(name) }
