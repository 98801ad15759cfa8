namespace Shim.Runc;

/// <summary>Global settings of every runc call for one container.</summary>
/// <param name="Binary">Absolute path of the runc executable.</param>
/// <param name="Root">runc state root (already including the namespace).</param>
/// <param name="LogPath">runc's JSON log file (the bundle's log.json).</param>
/// <param name="SystemdCgroup">Pass --systemd-cgroup.</param>
public sealed record RuncConfig(string Binary, string Root, string LogPath, bool SystemdCgroup = false)
{
    /// <summary>
    /// The watchdog of the short calls (kill, ps, pause, resume, update, exec, features): one still
    /// running after this is killed and reported. create, start, delete, checkpoint and restore run
    /// hooks or CRIU and have no watchdog, as in containerd's shim.
    /// </summary>
    public TimeSpan CallTimeout { get; init; } = DefaultCallTimeout;

    /// <summary>The watchdog of the short calls unless the shim is told otherwise (RUNCSHARP_RUNC_TIMEOUT).</summary>
    public static readonly TimeSpan DefaultCallTimeout = TimeSpan.FromMinutes(2);
}
