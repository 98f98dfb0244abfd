"""The MT10 task suite on Meta-World v3: cameras, proprioception, instructions, experts."""
