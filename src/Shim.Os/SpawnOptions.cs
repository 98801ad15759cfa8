using System.Runtime.InteropServices;

namespace Shim.Os;

/// <summary>How to start a child.</summary>
public sealed class SpawnOptions
{
    /// <summary>Absolute path of the executable (no PATH search).</summary>
    public required string Path { get; init; }

    /// <summary>Full argv including argv[0].</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary>"K=V" entries; null inherits this process's environment (as .NET sees it).</summary>
    public IReadOnlyList<string>? Environment { get; init; }

    /// <summary>Directory the child starts in; null keeps ours.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Child fd number to the handle dup2'ed there; fds 0/1/2 not given are /dev/null; nothing else is inherited.</summary>
    public IReadOnlyDictionary<int, SafeHandle>? Fds { get; init; }

    /// <summary>Puts the child in a new process group (setpgid(0,0)).</summary>
    public bool NewProcessGroup { get; init; }

    /// <summary>
    /// Signals blocked in the child's mask (every thread it starts inherits them); null or empty
    /// gives the usual empty mask. Dispositions are reset to default either way.
    /// </summary>
    public IReadOnlyList<int>? BlockedSignals { get; init; }

    /// <summary>Makes the child a session leader (setsid); implies a new process group.</summary>
    public bool NewSession { get; init; }
}
