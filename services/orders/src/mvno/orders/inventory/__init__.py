"""The product inventory (TMF637): the lines orders created, and their billing accounts."""
