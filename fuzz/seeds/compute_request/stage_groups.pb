
sales.stage_duration_days€È¬€èÌ»2stage2owner