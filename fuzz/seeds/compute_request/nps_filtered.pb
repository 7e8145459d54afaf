
success.nps€È¬€ı³ :
segmentsmb