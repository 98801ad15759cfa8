using Shim.Os.Terminals;
namespace Shim.Core.Stdio;

/// <summary>The stdio URIs or FIFO paths containerd gave for one process.</summary>
public sealed record StdioPaths(string Stdin, string Stdout, string Stderr, bool Terminal);
