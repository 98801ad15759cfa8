using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// Writes one chunk at a time for a pump whose destination epoll cannot watch (a regular file),
/// on a thread of its own, so a destination that stalls (a frozen, full, NFS or FUSE filesystem)
/// stalls only its own copy and never the loop thread that serves every other fd of the shim.
/// </summary>
/// <remarks>
/// write(2) on a regular file never reports EAGAIN: it returns when the filesystem took the
/// bytes, or blocks for as long as the filesystem does (a frozen superblock holds writers in
/// sb_start_write until it thaws, fs/super.c). containerd's shim copies each stream in a
/// goroutine of its own, so there too one stalled file blocks only that copy. The thread exists
/// only while its pump does and sleeps on a monitor between chunks: no wake-ups while idle.
/// </remarks>
internal sealed unsafe class WriterThread
{
    private const int StackSize = 128 * 1024;

    private readonly object _gate = new();
    private readonly int _fd;
    private readonly Action _completed;
    private byte* _data;
    private int _length;
    private bool _requested;
    private bool _stopping;
    private (int Written, int Errno) _result;

    /// <param name="fd">The destination, held open by the pump until <see cref="Stop"/> says otherwise.</param>
    /// <param name="completed">Called on the writer thread after each chunk; the pump then reads <see cref="TakeResult"/>.</param>
    internal WriterThread(int fd, Action completed)
    {
        _fd = fd;
        _completed = completed;
        var thread = new Thread(Run, StackSize) { IsBackground = true, Name = "file-writer" };
        thread.Start();
    }

    /// <summary>Loop thread: writes <paramref name="length"/> bytes at <paramref name="data"/>, which stay untouched until the completion.</summary>
    internal void Submit(byte* data, int length)
    {
        lock (_gate)
        {
            _data = data;
            _length = length;
            _requested = true;
            Monitor.Pulse(_gate);
        }
    }

    /// <summary>After the completion: bytes written and the errno that stopped the chunk short (0 when all of it was written).</summary>
    internal (int Written, int Errno) TakeResult()
    {
        lock (_gate)
        {
            return _result;
        }
    }

    /// <summary>Ends the thread once a chunk in progress (if any) returns.</summary>
    internal void Stop()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }
    }

    private void Run()
    {
        while (true)
        {
            byte* data;
            int length;
            lock (_gate)
            {
                while (!_requested && !_stopping)
                {
                    Monitor.Wait(_gate);
                }
                if (!_requested)
                {
                    return;
                }
                _requested = false;
                data = _data;
                length = _length;
            }
            var result = WriteAll(data, length);
            lock (_gate)
            {
                _result = result;
            }
            _completed();
        }
    }

    private (int Written, int Errno) WriteAll(byte* data, int length)
    {
        int written = 0;
        while (written < length)
        {
            nint n = Libc.write(_fd, data + written, (nuint)(length - written));
            if (n > 0)
            {
                written += (int)n;
                continue;
            }
            int errno = n == 0 ? Errno.EIO : Errno.Last;
            if (errno != Errno.EINTR)
            {
                return (written, errno);
            }
        }
        return (written, 0);
    }
}
