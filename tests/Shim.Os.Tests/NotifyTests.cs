using System.Runtime.InteropServices;
using Shim.Os.Tests.Support;
using Shim.Os.Io;
using Shim.Os.Notify;

namespace Shim.Os.Tests;

public sealed class NotifyTests
{
    [Fact]
    public void An_eventfd_reads_the_sum_of_writes_then_reports_empty()
    {
        using var fd = EventFd.Create();
        Assert.False(EventFd.TryRead(fd, out _));
        EventFd.Write(fd, 2);
        EventFd.Write(fd, 3);
        Assert.True(EventFd.TryRead(fd, out ulong value));
        Assert.Equal(5UL, value);
        Assert.False(EventFd.TryRead(fd, out _));
    }

    [Fact]
    public void An_eventfd_is_close_on_exec_and_non_blocking()
    {
        using var fd = EventFd.Create();
        string flags = FdInfoFlags(fd);
        int octal = Convert.ToInt32(flags, 8);
        Assert.NotEqual(0, octal & 0x80000);   // O_CLOEXEC
        Assert.NotEqual(0, octal & 0x800);     // O_NONBLOCK
    }

    [Fact]
    public async Task An_eventfd_on_the_io_loop_calls_back_when_written()
    {
        using var fd = EventFd.Create();
        var fired = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        var watch = IoLoop.Shared.Watch(fd, () =>
        {
            if (EventFd.TryRead(fd, out ulong v))
            {
                fired.TrySetResult(v);
            }
        });
        EventFd.Write(fd, 7);
        Assert.Equal(7UL, await fired.Task.WaitAsync(TestIo.Timeout, TestIo.Ct));
        IoLoop.Shared.Unwatch(watch);
    }

    [Fact]
    public void Inotify_reports_modify_then_delete_self_and_ignored_for_a_watched_file()
    {
        using var dir = TestIo.CreateTempDir();
        string file = dir.Combine("memory.events");
        File.WriteAllText(file, "oom 0\n");
        using var inotify = new Inotify();
        int wd = inotify.AddWatch(file, Inotify.IN_MODIFY | Inotify.IN_DELETE_SELF);
        var events = new List<InotifyEvent>();
        Assert.Equal(0, inotify.ReadEvents(events));

        File.WriteAllText(file, "oom 1\n");
        Assert.True(inotify.ReadEvents(events) > 0);
        Assert.All(events, e => Assert.Equal(wd, e.Wd));
        Assert.Contains(events, e => (e.Mask & Inotify.IN_MODIFY) != 0);
        Assert.All(events, e => Assert.Null(e.Name));

        events.Clear();
        File.Delete(file);
        inotify.ReadEvents(events);
        Assert.Contains(events, e => e.Wd == wd && (e.Mask & Inotify.IN_DELETE_SELF) != 0);
        Assert.Contains(events, e => e.Wd == wd && (e.Mask & Inotify.IN_IGNORED) != 0);
        Assert.False(inotify.RemoveWatch(wd));   // already gone
    }

    [Fact]
    public void Inotify_names_the_entry_for_a_directory_watch_and_removes_watches()
    {
        using var dir = TestIo.CreateTempDir();
        using var inotify = new Inotify();
        const uint IN_CREATE = 0x100;
        int wd = inotify.AddWatch(dir.Path, IN_CREATE);
        File.WriteAllText(dir.Combine("cgroup.events"), "populated 1\n");
        var events = new List<InotifyEvent>();
        inotify.ReadEvents(events);
        Assert.Equal(new InotifyEvent(wd, IN_CREATE, "cgroup.events"), Assert.Single(events));

        Assert.True(inotify.RemoveWatch(wd));
        events.Clear();
        inotify.ReadEvents(events);
        Assert.Equal(Inotify.IN_IGNORED, Assert.Single(events).Mask);
    }

    [Fact]
    public void Inotify_parse_decodes_packed_records()
    {
        var data = new byte[16 + 16 + 16];
        Write(data, 0, wd: 3, mask: 0x2, length: 0);
        Write(data, 16, wd: 4, mask: 0x100, length: 16);
        "abc"u8.CopyTo(data.AsSpan(32));   // NUL padded to 16
        var events = new List<InotifyEvent>();
        Assert.Equal(2, Inotify.Parse(data, events));
        Assert.Equal([new InotifyEvent(3, 0x2, null), new InotifyEvent(4, 0x100, "abc")], events);

        // a truncated trailing record is not invented
        events.Clear();
        Assert.Equal(1, Inotify.Parse(data.AsSpan(0, 40), events));
    }

    [Fact]
    public void AddWatch_on_a_missing_path_throws_enoent()
    {
        using var inotify = new Inotify();
        var ex = Assert.Throws<ErrnoException>(() => inotify.AddWatch("/nonexistent/memory.events", Inotify.IN_MODIFY));
        Assert.Equal(2, ex.Errno);
        Assert.Contains("/nonexistent/memory.events", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Filesystem_magic_tells_cgroup2_from_other_filesystems()
    {
        Assert.Null(FileSystems.TryGetMagic("/nonexistent"));
        Assert.NotNull(FileSystems.TryGetMagic("/proc"));
        Assert.Equal(0x9fa0L, FileSystems.TryGetMagic("/proc"));   // PROC_SUPER_MAGIC
        if (Directory.Exists("/sys/fs/cgroup/unified"))
        {
            Assert.Equal(FileSystems.CGROUP2_SUPER_MAGIC, FileSystems.TryGetMagic("/sys/fs/cgroup/unified"));
        }
    }

    private static void Write(byte[] data, int offset, int wd, uint mask, uint length)
    {
        MemoryMarshal.Write(data.AsSpan(offset), in wd);
        MemoryMarshal.Write(data.AsSpan(offset + 4), in mask);
        MemoryMarshal.Write(data.AsSpan(offset + 12), in length);
    }

    private static string FdInfoFlags(SafeHandle fd)
    {
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            foreach (var line in File.ReadLines($"/proc/self/fdinfo/{fd.DangerousGetHandle()}"))
            {
                if (line.StartsWith("flags:", StringComparison.Ordinal))
                {
                    return line["flags:".Length..].Trim();
                }
            }
            throw new InvalidOperationException("no flags line");
        }
        finally
        {
            fd.DangerousRelease();
        }
    }

}

/// <summary>Counts this process's fds, so it runs alone (other tests open fds in parallel).</summary>
[Collection(ProcessCollection.Name)]
public sealed class NotifyFdTests
{
    [Fact]
    public void Unwatch_lets_the_fd_close_at_once()
    {
        _ = IoLoop.Shared;   // the loop's own epoll and wake fds are not ours
        int before = OpenFdCount();
        for (int i = 0; i < 20; i++)
        {
            var fd = EventFd.Create();
            var watch = IoLoop.Shared.Watch(fd, () => { });
            IoLoop.Shared.Unwatch(watch);
            fd.Dispose();
        }
        Assert.Equal(before, OpenFdCount());
    }

    [Fact]
    public void Registering_an_oom_eventfd_on_a_missing_cgroup_fails_with_enoent_and_leaks_nothing()
    {
        int before = OpenFdCount();
        var ex = Assert.Throws<ErrnoException>(() => CgroupEventControl.RegisterOomEventFd("/nonexistent/cgroup"));
        Assert.Equal(2, ex.Errno);
        Assert.Equal(before, OpenFdCount());
    }

    // eventfds only: the runtime opens other files lazily (assemblies), which would make counts flaky
    private static int OpenFdCount() => Directory.GetFileSystemEntries("/proc/self/fd")
        .Count(fd => { try { return new FileInfo(fd).LinkTarget == "anon_inode:[eventfd]"; } catch (IOException) { return false; } });
}
