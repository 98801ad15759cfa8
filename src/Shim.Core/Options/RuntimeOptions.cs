namespace Shim.Core.Options;

/// <summary>The runc settings of one container, whatever message type containerd sent them in.</summary>
public sealed record RuntimeOptions
{
    /// <summary>runc binary name or path ("runc" when empty).</summary>
    public string BinaryName { get; init; } = "";
    /// <summary>runc state root before the namespace is appended ("/run/containerd/runc" when empty).</summary>
    public string Root { get; init; } = "";
    /// <summary>Use systemd cgroup paths.</summary>
    public bool SystemdCgroup { get; init; }
    /// <summary>runc create --no-pivot.</summary>
    public bool NoPivotRoot { get; init; }
    /// <summary>runc create --no-new-keyring.</summary>
    public bool NoNewKeyring { get; init; }
    /// <summary>Owner of the container-side stdio pipes.</summary>
    public uint IoUid { get; init; }
    /// <summary>Group of the container-side stdio pipes.</summary>
    public uint IoGid { get; init; }
    /// <summary>Cgroup to move the shim into at start.</summary>
    public string ShimCgroup { get; init; } = "";
    /// <summary>CRIU work directory for checkpoints.</summary>
    public string CriuWorkPath { get; init; } = "";

    /// <summary>Default runc state root (containerd's convention).</summary>
    public const string DefaultRoot = "/run/containerd/runc";

    /// <summary>The runc --root for <paramref name="ns"/>.</summary>
    public string RuncRoot(string ns) => Path.Combine(Root.Length > 0 ? Root : DefaultRoot, ns);
}
