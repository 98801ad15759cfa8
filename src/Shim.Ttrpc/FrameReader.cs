using System.Diagnostics;
using System.Runtime.CompilerServices;
using Shim.Ttrpc.Transport;

namespace Shim.Ttrpc;

/// <summary>Told when a <see cref="FrameReader"/> waits for the peer inside a frame, and when that frame is complete.</summary>
internal interface IMidFrameObserver
{
    /// <summary>The reader found the socket empty with part of a frame read; called once per frame, on the first such wait.</summary>
    void WaitingInsideFrame();

    /// <summary>The frame <see cref="WaitingInsideFrame"/> was called for has been read to its end.</summary>
    void FrameCompleted();
}

/// <summary>
/// Reads frames from a connection through one small reused buffer, so small frames cost one
/// receive and nothing on the heap; payloads larger than the buffer are received straight into
/// the caller's (pooled) memory. Used by exactly one reader at a time. It keeps count of the
/// current frame's payload, so an observer learns when the peer leaves it waiting mid-frame
/// (only when a receive finds nothing to read, not on every frame) and when that frame ends.
/// </summary>
internal sealed class FrameReader
{
    private const int BufferSize = 4096;

    private readonly ITtrpcConnection _connection;
    private readonly IMidFrameObserver? _observer;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _start;
    private int _end;
    private long _payloadLeft;   // bytes of the current frame's payload not consumed yet
    private bool _waitedInFrame; // the observer was told of a wait inside the current frame

    public FrameReader(ITtrpcConnection connection, IMidFrameObserver? observer = null)
    {
        _connection = connection;
        _observer = observer;
    }

    /// <summary>
    /// Reads the next header; null on a clean end of stream at a frame boundary.
    /// Throws <see cref="EndOfStreamException"/> if the peer stops mid-header.
    /// </summary>
    public ValueTask<FrameHeader?> ReadHeaderAsync(CancellationToken ct)
    {
        Debug.Assert(_payloadLeft == 0, "the previous frame's payload is read or skipped before the next header");
        // Fast path without an async state machine: most headers are already buffered.
        return _end - _start >= FrameCodec.HeaderSize
            ? new ValueTask<FrameHeader?>(TakeHeader())
            : ReadHeaderSlowAsync(ct);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<FrameHeader?> ReadHeaderSlowAsync(CancellationToken ct)
    {
        while (_end - _start < FrameCodec.HeaderSize)
        {
            // waiting with nothing buffered is an idle connection between frames, which may last for hours
            if (!await FillAsync(insideFrame: _end > _start, ct).ConfigureAwait(false))
            {
                if (_end == _start)
                {
                    return null;
                }

                throw new EndOfStreamException("connection closed inside a frame header");
            }
        }

        return TakeHeader();
    }

    private FrameHeader TakeHeader()
    {
        var header = FrameCodec.Read(_buffer.AsSpan(_start, FrameCodec.HeaderSize));
        _start += FrameCodec.HeaderSize;
        _payloadLeft = header.Length;
        CompleteIfDone();
        return header;
    }

    /// <summary>Fills <paramref name="destination"/> completely with the next bytes of the current frame's payload.</summary>
    public ValueTask ReadExactlyAsync(Memory<byte> destination, CancellationToken ct)
    {
        Debug.Assert(destination.Length <= _payloadLeft, "reads stay inside the current frame's payload");
        _payloadLeft -= destination.Length;
        int buffered = Math.Min(_end - _start, destination.Length);
        _buffer.AsSpan(_start, buffered).CopyTo(destination.Span);
        _start += buffered;
        if (buffered == destination.Length)
        {
            CompleteIfDone();
            return ValueTask.CompletedTask;
        }

        return ReadExactlySlowAsync(destination[buffered..], ct);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadExactlySlowAsync(Memory<byte> destination, CancellationToken ct)
    {
        while (!destination.IsEmpty)
        {
            if (destination.Length >= BufferSize)
            {
                // Large payloads skip the staging buffer.
                var receive = _connection.ReadAsync(destination, ct);
                NoteIfWaiting(receive.IsCompleted);
                int n = await receive.ConfigureAwait(false);
                if (n == 0)
                {
                    throw new EndOfStreamException("connection closed inside a frame payload");
                }

                destination = destination[n..];
            }
            else
            {
                if (!await FillAsync(insideFrame: true, ct).ConfigureAwait(false))
                {
                    throw new EndOfStreamException("connection closed inside a frame payload");
                }

                int take = Math.Min(_end - _start, destination.Length);
                _buffer.AsMemory(_start, take).CopyTo(destination);
                _start += take;
                destination = destination[take..];
            }
        }

        CompleteIfDone();
    }

    /// <summary>Skips <paramref name="count"/> bytes of the current frame's payload without keeping them (oversized or unwanted payloads).</summary>
    public ValueTask SkipAsync(long count, CancellationToken ct)
    {
        Debug.Assert(count <= _payloadLeft, "skips stay inside the current frame's payload");
        _payloadLeft -= count;
        int buffered = (int)Math.Min(_end - _start, count);
        _start += buffered;
        if (buffered == count)
        {
            CompleteIfDone();
            return ValueTask.CompletedTask;
        }

        return SkipSlowAsync(count - buffered, ct);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SkipSlowAsync(long count, CancellationToken ct)
    {
        while (count > 0)
        {
            if (_end == _start && !await FillAsync(insideFrame: true, ct).ConfigureAwait(false))
            {
                throw new EndOfStreamException("connection closed inside a skipped frame payload");
            }

            int take = (int)Math.Min(_end - _start, count);
            _start += take;
            count -= take;
        }

        CompleteIfDone();
    }

    /// <summary>Receives more bytes after any still-unread ones; false on end of stream.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FillAsync(bool insideFrame, CancellationToken ct)
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_start > 0)
        {
            // Only a partial header (< 10 bytes) or partial small payload can be left over here.
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        Debug.Assert(_end < BufferSize, "callers fill only when fewer than a header's bytes are buffered");
        var receive = _connection.ReadAsync(_buffer.AsMemory(_end), ct);
        if (insideFrame)
        {
            NoteIfWaiting(receive.IsCompleted);
        }

        int n = await receive.ConfigureAwait(false);
        if (n == 0)
        {
            return false;
        }

        _end += n;
        return true;
    }

    /// <summary>Tells the observer, once per frame, that a receive inside the frame found nothing to read.</summary>
    private void NoteIfWaiting(bool receivedAtOnce)
    {
        if (receivedAtOnce || _waitedInFrame || _observer is null)
        {
            return;
        }

        _waitedInFrame = true;
        _observer.WaitingInsideFrame();
    }

    private void CompleteIfDone()
    {
        if (_payloadLeft == 0 && _waitedInFrame)
        {
            _waitedInFrame = false;
            _observer!.FrameCompleted();
        }
    }
}
