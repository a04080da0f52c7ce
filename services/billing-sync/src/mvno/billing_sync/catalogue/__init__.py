"""The catalogue copy: offerings and their prices, as catalog announced them."""
