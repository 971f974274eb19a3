"""What a lab is: the topology model and the reading and checking of topology files."""
