namespace Shim.Core.Stdio;

/// <summary>The stdio URIs or FIFO paths containerd gave for one process.</summary>
public sealed record StdioPaths(string Stdin, string Stdout, string Stderr, bool Terminal)
{
    /// <summary>True when no stream was requested (runc gets /dev/null for all three).</summary>
    public bool IsNull => Stdin.Length == 0 && Stdout.Length == 0 && Stderr.Length == 0;
}
