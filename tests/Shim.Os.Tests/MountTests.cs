using Shim.Os.Tests.Support;
using Shim.Os.Mounting;

namespace Shim.Os.Tests;

public sealed class MountTests
{
    [Fact]
    public void A_tmpfs_with_a_nested_read_only_bind_is_removed_by_one_recursive_unmount()
    {
        using var dir = TestIo.CreateTempDir();
        string top = dir.Combine("top");
        string source = dir.Combine("source");
        Directory.CreateDirectory(top);
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "file"), "from source");
        try
        {
            RootfsMounts.MountAll([new MountRequest("tmpfs", "tmpfs", "", ["nosuid", "nodev", "size=16m", "mode=755"])], top, Reaper.Instance);
            Assert.True(Mounts.IsMountPoint(top));
            string nested = Path.Combine(top, "nested");
            Directory.CreateDirectory(nested);

            RootfsMounts.MountAll([new MountRequest("bind", source, "nested", ["rbind", "ro"])], top, Reaper.Instance);
            Assert.True(Mounts.IsMountPoint(nested));
            Assert.Equal("from source", File.ReadAllText(Path.Combine(nested, "file")));
            Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(nested, "new"), "x"));

            Mounts.UnmountRecursive(top);
            Assert.False(Mounts.IsMountPoint(nested));
            Assert.False(Mounts.IsMountPoint(top));
            Assert.False(Directory.Exists(nested));   // it lived on the tmpfs
        }
        finally
        {
            Mounts.UnmountRecursive(top);
        }
    }

    [Fact]
    public void Stacked_mounts_on_one_path_are_all_removed()
    {
        using var dir = TestIo.CreateTempDir();
        string target = dir.Combine("stack");
        Directory.CreateDirectory(target);
        try
        {
            RootfsMounts.MountAll([new MountRequest("tmpfs", "tmpfs", "", []), new MountRequest("tmpfs", "tmpfs", "", [])], target, Reaper.Instance);
            Assert.Equal(2, MountInfo.ReadMountPoints().Count(p => p == Mounts.RealPath(target)));
            Mounts.UnmountRecursive(target);
            Assert.False(Mounts.IsMountPoint(target));
        }
        finally
        {
            Mounts.UnmountRecursive(target);
        }
    }

    [Fact]
    public void A_stack_whose_lower_layer_has_a_mount_beneath_it_is_removed_whole()
    {
        using var dir = TestIo.CreateTempDir();
        string target = dir.Combine("stack");
        Directory.CreateDirectory(target);
        try
        {
            RootfsMounts.MountAll([new MountRequest("tmpfs", "tmpfs", "", [])], target, Reaper.Instance);
            Directory.CreateDirectory(Path.Combine(target, "sub"));
            RootfsMounts.MountAll([new MountRequest("tmpfs", "tmpfs", "", [])], Path.Combine(target, "sub"), Reaper.Instance);
            RootfsMounts.MountAll([new MountRequest("tmpfs", "tmpfs", "", [])], target, Reaper.Instance);
            string real = Mounts.RealPath(target)!;
            Assert.Equal(3, MountInfo.ReadMountPoints().Count(p => MountInfo.IsAtOrUnder(p, real)));

            Mounts.UnmountRecursive(target);
            Assert.DoesNotContain(MountInfo.ReadMountPoints(), p => MountInfo.IsAtOrUnder(p, real));
        }
        finally
        {
            Mounts.UnmountRecursive(target);
        }
    }

    [Fact]
    public void Unmounting_a_missing_or_unmounted_path_is_not_an_error()
    {
        using var dir = TestIo.CreateTempDir();
        Mounts.UnmountRecursive(dir.Combine("missing"));
        Mounts.UnmountRecursive(dir.Path);
        Assert.False(Mounts.IsMountPoint(dir.Path));
        Assert.False(Mounts.IsMountPoint(dir.Combine("missing")));
    }

    [Fact]
    public void A_failed_mount_names_the_type_source_and_target()
    {
        using var dir = TestIo.CreateTempDir();
        var ex = Assert.Throws<MountException>(() =>
            RootfsMounts.MountAll([new MountRequest("bind", dir.Combine("nope"), "", ["bind"])], dir.Path, Reaper.Instance));
        Assert.Equal($"mount bind {dir.Combine("nope")} on /: mount(2): No such file or directory (ENOENT)", ex.Message);
        Assert.Equal(2, Assert.IsType<ErrnoException>(ex.InnerException).Errno);
    }

    [Fact]
    public void The_root_is_a_mount_point()
    {
        Assert.True(Mounts.IsMountPoint("/"));
    }
}
