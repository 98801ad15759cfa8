using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// Writes a buffer into a pipe, driven by readiness on the loop thread, then closes the pipe so its
/// reader sees end of file. A reader that goes away first ends the feed with EPIPE, not an exception.
/// </summary>
internal sealed unsafe class FeedOperation : PipeOperation
{
    private readonly ReadOnlyMemory<byte> _data;
    private readonly TaskCompletionSource<FeedResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Loop thread only.
    private int _written;

    /// <param name="loop">The loop that drives the writes.</param>
    /// <param name="destination">Write end of a pipe or FIFO; owned from here (closed when the feed ends).</param>
    /// <param name="data">What to write; the caller keeps it unchanged until the feed ends.</param>
    internal FeedOperation(IoLoop loop, SafeHandle destination, ReadOnlyMemory<byte> data)
        : base(loop, destination) => _data = data;

    internal Task<FeedResult> Completion => _completion.Task;

    /// <summary>One write; false when the feed must wait for room or is finished.</summary>
    protected override bool Step()
    {
        if (_written == _data.Length)
        {
            End(0, null);
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
        return Failed(n == 0 ? Errno.EIO : Errno.Last);   // EPIPE: the reader went away without reading everything
    }

    protected override void Completed(int errno, Exception? error)
    {
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
