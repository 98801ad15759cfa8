namespace Shim.Os.Tests.Support;

/// <summary>
/// A small ext4 filesystem on a loop device (mount -o loop, which detaches the device when it is
/// unmounted), which fsfreeze(8) can freeze: writers then block in the kernel until it thaws,
/// as on a frozen, full or hung network filesystem. Dispose thaws, unmounts and deletes it.
/// </summary>
internal sealed class FreezableFilesystem : IAsyncDisposable
{
    private readonly TestIo.TempDir _dir;
    private bool _mounted;

    private FreezableFilesystem(TestIo.TempDir dir) => _dir = dir;

    /// <summary>Where the filesystem is mounted.</summary>
    internal string MountPoint => _dir.Combine("mnt");

    internal static async Task<FreezableFilesystem> CreateAsync()
    {
        var fs = new FreezableFilesystem(TestIo.CreateTempDir());
        try
        {
            string image = fs._dir.Combine("image");
            Directory.CreateDirectory(fs.MountPoint);
            await RunAsync($"truncate -s 64M {image} && mkfs.ext4 -q -F {image} && mount -o loop {image} {fs.MountPoint}");
            fs._mounted = true;
            return fs;
        }
        catch
        {
            await fs.DisposeAsync();
            throw;
        }
    }

    internal Task FreezeAsync() => RunAsync($"fsfreeze -f {MountPoint}");

    internal Task ThawAsync() => RunAsync($"fsfreeze -u {MountPoint}");

    public async ValueTask DisposeAsync()
    {
        if (_mounted)
        {
            // thawing a filesystem that is not frozen fails harmlessly; the unmount must not
            await Children.RunAsync($"fsfreeze -u {MountPoint} 2>/dev/null; umount {MountPoint}");
            _mounted = false;
        }
        _dir.Dispose();
    }

    private static async Task RunAsync(string script)
    {
        var (output, exit) = await Children.RunAsync(script + " 2>&1");
        if (exit.Status != 0)
        {
            throw new InvalidOperationException($"`{script}` failed ({exit.Status}): {output}");
        }
    }
}
