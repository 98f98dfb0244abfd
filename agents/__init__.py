"""What acts: robot policies (VLA families, the scripted expert) and partition deciders."""
