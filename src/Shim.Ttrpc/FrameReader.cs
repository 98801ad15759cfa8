using System.Diagnostics;
using System.Runtime.CompilerServices;
using Shim.Ttrpc.Transport;

namespace Shim.Ttrpc;

/// <summary>
/// Reads frames from a connection through one small reused buffer, so small frames cost one
/// receive and nothing on the heap; payloads larger than the buffer are received straight into
/// the caller's (pooled) memory. Used by exactly one reader at a time.
/// </summary>
internal sealed class FrameReader
{
    private const int BufferSize = 4096;

    private readonly ITtrpcConnection _connection;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _start;
    private int _end;

    public FrameReader(ITtrpcConnection connection)
    {
        _connection = connection;
    }

    /// <summary>
    /// Reads the next header; null on a clean end of stream at a frame boundary.
    /// Throws <see cref="EndOfStreamException"/> if the peer stops mid-header.
    /// </summary>
    public ValueTask<FrameHeader?> ReadHeaderAsync(CancellationToken ct)
    {
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
            if (!await FillAsync(ct).ConfigureAwait(false))
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
        return header;
    }

    /// <summary>Fills <paramref name="destination"/> completely with the next bytes of the stream.</summary>
    public ValueTask ReadExactlyAsync(Memory<byte> destination, CancellationToken ct)
    {
        int buffered = Math.Min(_end - _start, destination.Length);
        _buffer.AsSpan(_start, buffered).CopyTo(destination.Span);
        _start += buffered;
        return buffered == destination.Length ? ValueTask.CompletedTask : ReadExactlySlowAsync(destination[buffered..], ct);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadExactlySlowAsync(Memory<byte> destination, CancellationToken ct)
    {
        while (!destination.IsEmpty)
        {
            if (destination.Length >= BufferSize)
            {
                // Large payloads skip the staging buffer.
                int n = await _connection.ReadAsync(destination, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new EndOfStreamException("connection closed inside a frame payload");
                }

                destination = destination[n..];
            }
            else
            {
                if (!await FillAsync(ct).ConfigureAwait(false))
                {
                    throw new EndOfStreamException("connection closed inside a frame payload");
                }

                int take = Math.Min(_end - _start, destination.Length);
                _buffer.AsMemory(_start, take).CopyTo(destination);
                _start += take;
                destination = destination[take..];
            }
        }
    }

    /// <summary>Skips <paramref name="count"/> bytes without keeping them (oversized or unwanted payloads).</summary>
    public ValueTask SkipAsync(long count, CancellationToken ct)
    {
        int buffered = (int)Math.Min(_end - _start, count);
        _start += buffered;
        return buffered == count ? ValueTask.CompletedTask : SkipSlowAsync(count - buffered, ct);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SkipSlowAsync(long count, CancellationToken ct)
    {
        while (count > 0)
        {
            if (_end == _start && !await FillAsync(ct).ConfigureAwait(false))
            {
                throw new EndOfStreamException("connection closed inside a skipped frame payload");
            }

            int take = (int)Math.Min(_end - _start, count);
            _start += take;
            count -= take;
        }
    }

    /// <summary>Receives more bytes after any still-unread ones; false on end of stream.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FillAsync(CancellationToken ct)
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
        int n = await _connection.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
        if (n == 0)
        {
            return false;
        }

        _end += n;
        return true;
    }
}
