
marketing.clv€È¬€èÌ»B
margin0.8