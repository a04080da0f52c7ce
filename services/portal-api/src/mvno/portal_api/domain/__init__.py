"""portal-api's pure rules: what a screen shows and how a customer's request becomes an order."""
