using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// Writes a buffer into a pipe, driven by readiness on the loop thread, then closes the pipe so its
/// reader sees end of file. A reader that goes away first ends the feed with EPIPE, not an exception.
/// </summary>
internal sealed unsafe class FeedOperation : FdRegistration
{
    private const int WritesPerTurn = 32;

    private readonly ReadOnlyMemory<byte> _data;
    private readonly TaskCompletionSource<FeedResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Loop thread only.
    private int _written;
    private bool _pollable;
    private bool _done;

    /// <param name="loop">The loop that drives the writes.</param>
    /// <param name="destination">Write end of a pipe or FIFO; owned from here (closed when the feed ends).</param>
    /// <param name="data">What to write; the caller keeps it unchanged until the feed ends.</param>
    internal FeedOperation(IoLoop loop, SafeHandle destination, ReadOnlyMemory<byte> data)
        : base(loop, destination) => _data = data;

    internal Task<FeedResult> Completion => _completion.Task;

    internal override void Start()
    {
        try
        {
            Fds.SetNonBlocking(Handle, true);
            _pollable = Register();
        }
        catch (ErrnoException ex)
        {
            Finish(ex.Errno);
            return;
        }
        catch (ObjectDisposedException)
        {
            Finish(Errno.EBADF);   // the owner closed it before the loop got to it
            return;
        }
        Loop.Schedule(this);   // an empty pipe takes the first bytes at once
    }

    internal override void OnEvents(uint events)
    {
        if (_done)
        {
            return;
        }
        for (int budget = WritesPerTurn; budget > 0; budget--)
        {
            if (!WriteOnce())
            {
                return;
            }
        }
        Loop.Schedule(this);   // turn used up: let other handlers run, then carry on
    }

    internal override void Abort(Exception? error)
    {
        if (!_done)
        {
            Finish(error is ErrnoException e ? e.Errno : error is null ? Errno.ECANCELED : Errno.EIO, error);
        }
    }

    /// <summary>One write; false when the feed must wait for room or is finished.</summary>
    private bool WriteOnce()
    {
        if (_written == _data.Length)
        {
            Finish(0);
            return false;
        }
        nint n;
        fixed (byte* p = _data.Span[_written..])
        {
            n = Libc.write(Fd, p, (nuint)(_data.Length - _written));
        }
        if (n > 0)
        {
            _written += (int)n;
            return true;
        }
        int errno = n == 0 ? Errno.EIO : Errno.Last;
        if (errno == Errno.EINTR)
        {
            return true;
        }
        if (errno == Errno.EAGAIN)
        {
            if (!_pollable)
            {
                Loop.Schedule(this);   // no readiness to wait for; retry next turn
            }
            return false;
        }
        Finish(errno);   // EPIPE: the reader went away without reading everything
        return false;
    }

    private void Finish(int errno, Exception? error = null)
    {
        _done = true;
        Release();
        Handle.Dispose();
        if (error is not null && error is not ErrnoException)
        {
            _completion.TrySetException(error);
        }
        else
        {
            _completion.TrySetResult(new FeedResult(_written, errno));
        }
    }
}
