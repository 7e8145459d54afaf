
#
!
c1€È¬ *camp12smb:alice