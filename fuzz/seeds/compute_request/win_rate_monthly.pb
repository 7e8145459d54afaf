
sales.win_rate€È¬€èÌ» *Europe/Paris2owner