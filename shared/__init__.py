"""chatft, in layers whose imports only point down: domain <- azure, local <- flows <- runtime, cli."""
