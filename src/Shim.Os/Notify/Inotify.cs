using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

// the constants keep the kernel's names (inotify event bits), so they can be looked up in its headers
#pragma warning disable CA1707

namespace Shim.Os.Notify;

/// <summary>An inotify instance (non-blocking, close-on-exec) whose fd can be put on the <see cref="IoLoop"/>.</summary>
/// <remarks>
/// AddWatch and RemoveWatch may be called from any thread; ReadEvents reuses one buffer and
/// must be called by one reader at a time (the loop callback).
/// </remarks>
public sealed class Inotify : IDisposable
{
    /// <summary>File was modified (write, truncate).</summary>
    public const uint IN_MODIFY = Libc.IN_MODIFY;
    /// <summary>Metadata changed (including the link count when the file is deleted).</summary>
    public const uint IN_ATTRIB = Libc.IN_ATTRIB;
    /// <summary>The watched file itself was deleted.</summary>
    public const uint IN_DELETE_SELF = Libc.IN_DELETE_SELF;
    /// <summary>The watched file itself was moved.</summary>
    public const uint IN_MOVE_SELF = Libc.IN_MOVE_SELF;
    /// <summary>The filesystem holding the watched file was unmounted.</summary>
    public const uint IN_UNMOUNT = Libc.IN_UNMOUNT;
    /// <summary>The event queue overflowed (Wd is -1); events were lost.</summary>
    public const uint IN_Q_OVERFLOW = Libc.IN_Q_OVERFLOW;
    /// <summary>The watch was removed (explicitly, or because the file is gone); always delivered.</summary>
    public const uint IN_IGNORED = Libc.IN_IGNORED;

    // Room for many events per read; at least one event with the longest name.
    private const int BufferSize = 16 * 1024;

    private readonly SafeFileHandle _handle;
    private readonly byte[] _buffer = new byte[BufferSize];

    /// <summary>inotify_init1(IN_NONBLOCK | IN_CLOEXEC).</summary>
    public Inotify()
    {
        int fd = Libc.inotify_init1(Libc.IN_NONBLOCK | Libc.IN_CLOEXEC);
        if (fd < 0)
        {
            throw ErrnoException.FromLast("inotify_init1");
        }
        _handle = new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The inotify descriptor, e.g. for <see cref="IoLoop.Watch"/>.</summary>
    public SafeFileHandle Handle => _handle;

    /// <summary>inotify_add_watch(2); returns the watch descriptor (the same one again for a path already watched).</summary>
    public unsafe int AddWatch(string path, uint mask)
    {
        using var use = new FdUse(_handle);
        byte* native = NativeStrings.Single(path, out var owner);
        using (owner)
        {
            int wd = Libc.inotify_add_watch(use.Fd, native, mask);
            if (wd < 0)
            {
                throw ErrnoException.FromLast($"inotify_add_watch {path}");
            }
            return wd;
        }
    }

    /// <summary>inotify_rm_watch(2); false when the watch no longer exists (EINVAL: already removed, e.g. the file was deleted).</summary>
    public bool RemoveWatch(int wd)
    {
        using var use = new FdUse(_handle);
        if (Libc.inotify_rm_watch(use.Fd, wd) == 0)
        {
            return true;
        }
        int errno = Errno.Last;
        if (errno == Errno.EINVAL)
        {
            return false;
        }
        throw new ErrnoException(errno, $"inotify_rm_watch {wd}");
    }

    /// <summary>Reads every queued event (until EAGAIN) and appends them to <paramref name="into"/>; returns how many were appended.</summary>
    public int ReadEvents(ICollection<InotifyEvent> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        int count = 0;
        while (true)
        {
            int n = RawIo.Read(_handle, _buffer);
            if (n == -Errno.EAGAIN)
            {
                return count;
            }
            if (n < 0)
            {
                throw new ErrnoException(-n, "read inotify");
            }
            if (n == 0)
            {
                return count;   // not expected from inotify; avoid spinning
            }
            count += Parse(_buffer.AsSpan(0, n), into);
        }
    }

    /// <summary>Closes the inotify fd; the kernel drops every watch with it.</summary>
    public void Dispose() => _handle.Dispose();

    /// <summary>Decodes a buffer of struct inotify_event records.</summary>
    internal static int Parse(ReadOnlySpan<byte> data, ICollection<InotifyEvent> into)
    {
        int count = 0;
        int offset = 0;
        while (data.Length - offset >= Libc.InotifyEventHeaderSize)
        {
            var record = data[offset..];
            int wd = MemoryMarshal.Read<int>(record);
            uint mask = MemoryMarshal.Read<uint>(record[Libc.InotifyMaskOffset..]);
            int length = (int)MemoryMarshal.Read<uint>(record[Libc.InotifyLenOffset..]);
            int end = Libc.InotifyEventHeaderSize + length;
            if (length < 0 || end > record.Length)
            {
                break;   // truncated record; the kernel never splits one across reads
            }
            string? name = null;
            if (length > 0)
            {
                var raw = record[Libc.InotifyEventHeaderSize..end];
                int nul = raw.IndexOf((byte)0);
                if (nul >= 0)
                {
                    raw = raw[..nul];
                }
                if (!raw.IsEmpty)
                {
                    name = Encoding.UTF8.GetString(raw);
                }
            }
            into.Add(new InotifyEvent(wd, mask, name));
            count++;
            offset += end;
        }
        return count;
    }
}
