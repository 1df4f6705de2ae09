"""The lab: simulated Hyper-V hosts that speak real WinRM, for the demo, the tests and benchmarks."""
