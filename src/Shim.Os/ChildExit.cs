namespace Shim.Os;

/// <summary>Exit of a reaped child: Status = exit code, or 128+signal if killed by a signal.</summary>
public readonly record struct ChildExit(int Pid, int Status, DateTimeOffset ExitedAt);
