using System.Buffers;
using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// Reads a pipe into memory, driven by readiness on the loop thread: to its end of file, or only
/// the first bytes that arrive. It owns the source and closes it when it ends, so a writer that
/// goes on past the limit gets EPIPE instead of filling a pipe nobody reads any more.
/// </summary>
internal sealed unsafe class CaptureOperation : PipeOperation
{
    private const int FirstBuffer = 4 * 1024;

    private readonly int _limit;
    private readonly bool _toEnd;
    private readonly TaskCompletionSource<CaptureResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Loop thread only.
    private byte[]? _buffer;   // rented; grows by doubling up to _limit
    private int _length;
    private bool _truncated;

    /// <param name="loop">The loop that drives the read.</param>
    /// <param name="source">Read end of a pipe or FIFO; owned from here (closed when the read ends).</param>
    /// <param name="limit">Most bytes kept; a source that offers more ends the read as truncated.</param>
    /// <param name="toEnd">True: read until end of file; false: end after the first read that returns data.</param>
    internal CaptureOperation(IoLoop loop, SafeHandle source, int limit, bool toEnd)
        : base(loop, source)
    {
        _limit = limit;
        _toEnd = toEnd;
    }

    internal Task<CaptureResult> Completion => _completion.Task;

    /// <summary>One read; false when the read must wait for readiness or is finished.</summary>
    protected override bool Step()
    {
        if (_length == _limit)
        {
            return ProbePastLimit();
        }
        int room = Room();
        nint n;
        fixed (byte* p = &_buffer![_length])
        {
            n = Libc.read(Fd, p, (nuint)room);
        }
        if (n > 0)
        {
            _length += (int)n;
            if (_toEnd)
            {
                return true;
            }
            End(0, null);
            return false;
        }
        if (n == 0)
        {
            End(0, null);
            return false;
        }
        return Failed(Errno.Last);
    }

    /// <summary>The limit is held: one more byte means the source has more than the caller takes; end of file means it had exactly that much.</summary>
    private bool ProbePastLimit()
    {
        byte extra;
        nint n = Libc.read(Fd, &extra, 1);
        if (n >= 0)
        {
            _truncated = n > 0;
            End(0, null);
            return false;
        }
        return Failed(Errno.Last);
    }

    /// <summary>Free bytes to read into, growing the buffer when it is full (never past the limit).</summary>
    private int Room()
    {
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(_limit, FirstBuffer));
        }
        else if (_length == Math.Min(_buffer.Length, _limit))
        {
            var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(_limit, 2L * _buffer.Length));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        return Math.Min(_buffer.Length, _limit) - _length;
    }

    protected override void Completed(int errno, Exception? error)
    {
        Release();
        Handle.Dispose();
        byte[] data = _length == 0 ? [] : _buffer.AsSpan(0, _length).ToArray();
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
        if (error is not null && error is not ErrnoException)
        {
            _completion.TrySetException(error);
        }
        else
        {
            _completion.TrySetResult(new CaptureResult(data, _truncated, errno));
        }
    }
}
