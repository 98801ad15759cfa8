namespace Shim.E2E.Tests;

/// <summary>
/// An ext4 image loop-mounted in a test's directory, frozen and thawed with fsfreeze(8): while
/// frozen, every write into it blocks in the kernel, as on a full, hung or frozen log volume.
/// Dispose thaws it first (a frozen filesystem would hold the shim's exit too), then detaches it.
/// </summary>
internal sealed class FreezableFilesystem : IAsyncDisposable
{
    private bool _mounted;

    private FreezableFilesystem(string mountPoint) => MountPoint = mountPoint;

    public string MountPoint { get; }

    /// <summary>Makes and mounts the filesystem under <paramref name="dir"/> (mount -o loop: the loop device goes with the unmount).</summary>
    public static async Task<FreezableFilesystem> CreateAsync(string dir, CancellationToken ct)
    {
        string image = Path.Combine(dir, "volume.img");
        var fs = new FreezableFilesystem(Path.Combine(dir, "volume"));
        Directory.CreateDirectory(fs.MountPoint);
        await ShAsync($"truncate -s 64M '{image}' && mkfs.ext4 -q -F '{image}' && mount -o loop '{image}' '{fs.MountPoint}'", ct);
        fs._mounted = true;
        return fs;
    }

    public Task FreezeAsync(CancellationToken ct) => ShAsync($"fsfreeze --freeze '{MountPoint}'", ct);

    public Task ThawAsync(CancellationToken ct) => ShAsync($"fsfreeze --unfreeze '{MountPoint}'", ct);

    public async ValueTask DisposeAsync()
    {
        if (!_mounted)
        {
            return;
        }
        _mounted = false;
        // a lazy unmount: a shim still holding a log file open must not keep the volume (or the test) alive
        await Command.RunAsync("sh", ["-c", $"fsfreeze --unfreeze '{MountPoint}' 2>/dev/null; umount -l '{MountPoint}'"]);
    }

    private static async Task ShAsync(string script, CancellationToken ct) =>
        (await Command.RunAsync("sh", ["-c", script], ct: ct)).EnsureSuccess();
}
