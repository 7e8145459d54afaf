
^\
d1alice1200.50"€È¬*€›æ­08Bc1Jcamp1R
	qualified€È¬R
proposal€ßü¬