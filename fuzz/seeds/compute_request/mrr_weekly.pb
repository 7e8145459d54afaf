
revenue.mrr€È¬€èÌ» *America/New_York