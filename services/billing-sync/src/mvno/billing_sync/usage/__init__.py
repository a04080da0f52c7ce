"""Usage records: batches from files and the usage API, daily totals, the cursor."""
