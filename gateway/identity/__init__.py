"""Who is asking: the requesters file, SCRAM-SHA-256 verifiers, hashed bearer tokens, `gateway passwd`."""
