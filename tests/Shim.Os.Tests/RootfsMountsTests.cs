using Shim.Os.Tests.Support;
using Shim.Os.Mounting;

namespace Shim.Os.Tests;

public sealed class RootfsMountsTests
{
    [Fact]
    public void An_overlay_of_120_layers_longer_than_a_page_mounts_without_moving_our_cwd()
    {
        using var dir = TestIo.CreateTempDir();
        // long layer paths, as under /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs
        string snapshots = dir.Combine(new string('s', 120));
        string rootfs = dir.Combine("rootfs");
        Directory.CreateDirectory(rootfs);
        var lowers = new List<string>();
        for (int n = 120; n >= 1; n--)
        {
            string layer = Path.Combine(snapshots, n.ToString(System.Globalization.CultureInfo.InvariantCulture), "fs");
            Directory.CreateDirectory(Path.Combine(layer, "layers"));
            File.WriteAllText(Path.Combine(layer, "layers", $"{n}"), "");
            lowers.Add(layer);
        }
        Directory.CreateDirectory(Path.Combine(snapshots, "upper", "fs"));
        Directory.CreateDirectory(Path.Combine(snapshots, "upper", "work"));
        string[] options = ["index=off", "lowerdir=" + string.Join(':', lowers),
            $"upperdir={snapshots}/upper/fs", $"workdir={snapshots}/upper/work"];
        Assert.True(options.Sum(o => o.Length) > 4096);
        string cwd = Environment.CurrentDirectory;
        try
        {
            RootfsMounts.MountAll([new MountRequest("overlay", "overlay", "", options)], rootfs, Reaper.Instance);

            Assert.Equal(120, Directory.GetFiles(Path.Combine(rootfs, "layers")).Length);
            Assert.Equal(cwd, Environment.CurrentDirectory);
            Assert.Equal(cwd, Mounts.RealPath("/proc/self/cwd"));
        }
        finally
        {
            Mounts.UnmountRecursive(rootfs);
        }
        Assert.False(Mounts.IsMountPoint(rootfs));
    }

    [Fact]
    public void A_failed_second_mount_takes_the_first_down_and_names_the_mount_that_failed()
    {
        using var dir = TestIo.CreateTempDir();
        string rootfs = dir.Combine("rootfs");
        Directory.CreateDirectory(rootfs);
        string missing = dir.Combine("missing");

        var ex = Assert.Throws<MountException>(() => RootfsMounts.MountAll(
            [new MountRequest("tmpfs", "tmpfs", "", ["size=1m"]), new MountRequest("bind", missing, "", ["rbind"])], rootfs, Reaper.Instance));

        Assert.StartsWith($"mount 2 of 2 (bind {missing} on /): mount(2): ", ex.Message, StringComparison.Ordinal);
        Assert.False(ex.BadInput);
        Assert.DoesNotContain(MountInfo.ReadMountPoints(), p => MountInfo.IsAtOrUnder(p, rootfs));
    }

    [Theory]
    [InlineData("uidmap", "option \"uidmap\" needs a value: uidmap=<container-id>:<host-id>:<size>[,...]")]
    [InlineData("uidmap=0:1:x", "option \"uidmap=0:1:x\": mapping \"0:1:x\": size \"x\" is not a non-negative integer")]
    public void A_bad_option_is_bad_input_and_leaves_nothing_mounted(string option, string expected)
    {
        using var dir = TestIo.CreateTempDir();
        string rootfs = dir.Combine("rootfs");
        string source = dir.Combine("source");
        Directory.CreateDirectory(rootfs);
        Directory.CreateDirectory(source);

        var ex = Assert.Throws<MountException>(() => RootfsMounts.MountAll(
            [new MountRequest("tmpfs", "tmpfs", "", []), new MountRequest("bind", source, "", ["rbind", option, "gidmap=0:1:1"])], rootfs, Reaper.Instance));

        Assert.True(ex.BadInput);
        Assert.Equal($"mount 2 of 2 (bind {source} on /): {expected}", ex.Message);
        Assert.False(Mounts.IsMountPoint(rootfs));
    }

    [Fact]
    public void A_target_leading_out_of_the_rootfs_is_bad_input()
    {
        using var dir = TestIo.CreateTempDir();
        string rootfs = dir.Combine("rootfs");
        Directory.CreateDirectory(rootfs);

        var ex = Assert.Throws<MountException>(() => RootfsMounts.MountAll(
            [new MountRequest("tmpfs", "tmpfs", "", []), new MountRequest("tmpfs", "tmpfs", "../../etc", [])], rootfs, Reaper.Instance));

        Assert.True(ex.BadInput);
        Assert.EndsWith("target \"../../etc\" leads out of the rootfs", ex.Message, StringComparison.Ordinal);
        Assert.False(Mounts.IsMountPoint(rootfs));
    }

    [Fact]
    public void A_symlinked_target_pointing_at_the_host_mounts_nothing_on_the_host()
    {
        using var dir = TestIo.CreateTempDir();
        string rootfs = dir.Combine("rootfs");
        string host = dir.Combine("host");
        Directory.CreateDirectory(rootfs);
        Directory.CreateDirectory(host);

        File.CreateSymbolicLink(Path.Combine(rootfs, "escape"), host);

        var ex = Assert.Throws<MountException>(() => RootfsMounts.MountAll(
            [new MountRequest("tmpfs", "tmpfs", "escape", [])], rootfs, Reaper.Instance));

        Assert.Contains("resolve target escape in the rootfs", ex.Message, StringComparison.Ordinal);
        Assert.False(Mounts.IsMountPoint(host));
        Assert.False(Mounts.IsMountPoint(rootfs));
    }

    [Fact]
    public async Task A_loop_mount_attaches_a_device_that_goes_away_with_the_unmount()
    {
        using var dir = TestIo.CreateTempDir();
        string image = dir.Combine("disk.img");
        string rootfs = dir.Combine("rootfs");
        Directory.CreateDirectory(rootfs);
        using (var f = File.Create(image))
        {
            f.SetLength(8 << 20);
        }
        var (_, mkfs) = await Children.RunAsync($"/usr/sbin/mkfs.ext4 -q -F {image}");
        Assert.Equal(0, mkfs.Status);
        string? device = null;
        try
        {
            RootfsMounts.MountAll([new MountRequest("ext4", image, "", ["loop", "X-containerd.ignored=1"])], rootfs, Reaper.Instance);

            device = MountSource(rootfs);
            Assert.StartsWith("/dev/loop", device, StringComparison.Ordinal);
            Assert.Equal(image, BackingFile(device));
            Assert.True(Directory.Exists(Path.Combine(rootfs, "lost+found")));
        }
        finally
        {
            Mounts.UnmountRecursive(rootfs);
        }
        // LO_FLAGS_AUTOCLEAR: the kernel detaches the device once the mount is gone
        Assert.Null(BackingFile(device));
    }

    [Fact]
    public void A_failed_loop_mount_leaves_no_device_attached()
    {
        using var dir = TestIo.CreateTempDir();
        string image = dir.Combine("not-a-filesystem.img");
        string rootfs = dir.Combine("rootfs");
        Directory.CreateDirectory(rootfs);
        using (var f = File.Create(image))
        {
            f.SetLength(1 << 20);
        }

        var ex = Assert.Throws<MountException>(() =>
            RootfsMounts.MountAll([new MountRequest("ext4", image, "", ["loop", "ro"])], rootfs, Reaper.Instance));

        Assert.Contains("mount(2)", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(image, AttachedLoopFiles());
    }

    [Fact]
    public void An_idmapped_bind_shows_host_owned_files_shifted_by_the_mapping()
    {
        using var dir = TestIo.CreateTempDir();
        string rootfs = dir.Combine("rootfs");
        string source = dir.Combine("source");
        Directory.CreateDirectory(rootfs);
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "file"), "x");
        var helpersBefore = UnshareHelpers();
        try
        {
            RootfsMounts.MountAll([new MountRequest("bind", source, "", ["rbind", "uidmap=0:200000:65536", "gidmap=0:300000:65536"])], rootfs, Reaper.Instance);

            Assert.Equal((200000, 300000), Owner(Path.Combine(rootfs, "file")));
            Assert.Equal((0, 0), Owner(Path.Combine(source, "file")));
        }
        finally
        {
            Mounts.UnmountRecursive(rootfs);
        }
        Assert.False(Mounts.IsMountPoint(rootfs));
        Assert.Equal(helpersBefore, UnshareHelpers());
    }

    [Fact]
    public void An_idmapped_overlay_maps_its_lowers_and_removes_the_idmapped_copy_afterwards()
    {
        using var dir = TestIo.CreateTempDir();
        string bundle = dir.Combine("bundle");
        string rootfs = Path.Combine(bundle, "rootfs");
        string snapshots = dir.Combine("snapshots");
        Directory.CreateDirectory(rootfs);
        foreach (string d in new[] { "1/fs", "2/fs", "3/fs", "3/work" })
        {
            Directory.CreateDirectory(Path.Combine(snapshots, d));
        }
        File.WriteAllText(Path.Combine(snapshots, "1/fs/lower1"), "");
        File.WriteAllText(Path.Combine(snapshots, "2/fs/lower2"), "");
        string[] options = [$"lowerdir={snapshots}/2/fs:{snapshots}/1/fs", $"upperdir={snapshots}/3/fs", $"workdir={snapshots}/3/work",
            "uidmap=0:200000:65536", "gidmap=0:200000:65536"];
        try
        {
            RootfsMounts.MountAll([new MountRequest("overlay", "overlay", "", options)], rootfs, Reaper.Instance);

            Assert.Equal((200000, 200000), Owner(Path.Combine(rootfs, "lower1")));
            Assert.Equal((200000, 200000), Owner(Path.Combine(rootfs, "lower2")));
            Assert.Equal(["rootfs"], Directory.GetFileSystemEntries(bundle).Select(Path.GetFileName));
            Assert.Equal([rootfs], MountInfo.ReadMountPoints().Where(p => MountInfo.IsAtOrUnder(p, dir.Path)));
        }
        finally
        {
            Mounts.UnmountRecursive(rootfs);
        }
    }

    [Fact]
    public void An_idmapped_overlay_whose_mount_fails_leaves_no_idmapped_copy_behind()
    {
        using var dir = TestIo.CreateTempDir();
        string bundle = dir.Combine("bundle");
        string rootfs = Path.Combine(bundle, "rootfs");
        string snapshots = dir.Combine("snapshots");
        Directory.CreateDirectory(rootfs);
        Directory.CreateDirectory(Path.Combine(snapshots, "1/fs"));
        Directory.CreateDirectory(Path.Combine(snapshots, "2/fs"));
        // no workdir: the overlay mount itself fails
        string[] options = [$"lowerdir={snapshots}/2/fs:{snapshots}/1/fs", $"upperdir={snapshots}/3/fs", $"workdir={snapshots}/3/work",
            "uidmap=0:200000:65536", "gidmap=0:200000:65536"];

        var ex = Assert.Throws<MountException>(() => RootfsMounts.MountAll([new MountRequest("overlay", "overlay", "", options)], rootfs, Reaper.Instance));

        Assert.Contains("mount(2) with data \"lowerdir=", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["rootfs"], Directory.GetFileSystemEntries(bundle).Select(Path.GetFileName));
        Assert.DoesNotContain(MountInfo.ReadMountPoints(), p => MountInfo.IsAtOrUnder(p, dir.Path));
    }

    private static (int Uid, int Gid) Owner(string path)
    {
        using var fd = Fds.Open(path, Fds.O_RDONLY);
        return Fds.Owner(fd);
    }

    private static string MountSource(string mountPoint)
    {
        foreach (string line in File.ReadAllLines("/proc/self/mountinfo"))
        {
            string[] fields = line.Split(' ');
            if (fields[4] == mountPoint)
            {
                int dash = Array.IndexOf(fields, "-");
                return fields[dash + 2];
            }
        }
        throw new InvalidOperationException($"{mountPoint} is not mounted");
    }

    private static string? BackingFile(string? device)
    {
        string path = $"/sys/block/{Path.GetFileName(device)}/loop/backing_file";
        try
        {
            return File.ReadAllText(path).TrimEnd('\n');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static List<string> AttachedLoopFiles() =>
        [.. Directory.GetDirectories("/sys/block", "loop*").Select(d => BackingFile(d)).OfType<string>()];

    private static int UnshareHelpers() =>
        Directory.GetDirectories("/proc").Count(d => int.TryParse(Path.GetFileName(d), out _) && IsOurHelper(d));

    private static bool IsOurHelper(string procDir)
    {
        try
        {
            return File.ReadAllText(Path.Combine(procDir, "stat")).Contains($") S {Environment.ProcessId} ", StringComparison.Ordinal)
                && File.ReadAllText(Path.Combine(procDir, "comm")).TrimEnd() is "cat" or "unshare";
        }
        catch (IOException)
        {
            return false;
        }
    }
}
