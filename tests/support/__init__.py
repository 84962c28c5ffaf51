"""Real stand-ins for the outside world: moto's server, a registry, fault-injecting proxies."""
