using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using Google.Protobuf;
using Shim.Ttrpc.Wire;
using Shim.Ttrpc.Transport;

namespace Shim.Ttrpc;

/// <summary>
/// A ttrpc client over one connection: calls may run concurrently, each on its own odd stream
/// id; one background read loop matches responses to calls by stream id.
/// </summary>
public sealed class TtrpcClient : IAsyncDisposable
{
    private readonly ITtrpcConnection _connection;
    private readonly FrameReader _reader;
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "no timer and no wait handle is ever requested, so nothing is left to release; calls in flight may still use it after the connection closed")]
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "no timer and no wait handle is ever requested, so nothing is left to release; calls in flight may still use it after the connection closed")]
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private readonly Dictionary<uint, TaskCompletionSource<Response>> _pending = [];  // guarded by _gate
    private bool _isClosed;                                                          // guarded by _gate
    private string _closeReason = "ttrpc: connection closed";                        // guarded by _gate
    private uint _nextStreamId = 1;                                                  // guarded by _writeLock
    private readonly Task _readLoop;

    /// <summary>Wraps an already connected stream socket; the client owns it from now on.</summary>
    public TtrpcClient(Socket connected)
        : this(new SocketTtrpcConnection(connected ?? throw new ArgumentNullException(nameof(connected))))
    {
    }

    /// <summary>Wraps an already connected channel; the client owns it from now on.</summary>
    public TtrpcClient(ITtrpcConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _connection = connection;
        _reader = new FrameReader(connection);
        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>True once the connection is gone; every later call fails with UNAVAILABLE.</summary>
    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _isClosed;
            }
        }
    }

    /// <summary>Completes (never faults) when the connection is gone; pending calls then fail with UNAVAILABLE.</summary>
    public Task Closed => _closed.Task;

    /// <summary>Connects to the unix socket at <paramref name="unixSocketPath"/>; connection failures surface as <see cref="SocketException"/>.</summary>
    public static async Task<TtrpcClient> ConnectAsync(string unixSocketPath, CancellationToken ct) =>
        new(await SocketTtrpcConnection.ConnectAsync(unixSocketPath, ct).ConfigureAwait(false));

    /// <summary>
    /// Calls <paramref name="service"/>/<paramref name="method"/>. A non-OK answer throws
    /// <see cref="TtrpcException"/> with the server's code; <paramref name="timeout"/> is sent as
    /// timeout_nano and also enforced locally (DEADLINE_EXCEEDED); a lost connection gives
    /// UNAVAILABLE; cancelling <paramref name="ct"/> throws <see cref="OperationCanceledException"/>.
    /// </summary>
    [SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "both token sources are disposed by their using declarations")]
    public async Task<TResponse> CallAsync<TRequest, TResponse>(
        string service,
        string method,
        TRequest request,
        MessageParser<TResponse> parser,
        TimeSpan? timeout = null,
        IReadOnlyList<KeyValuePair<string, string>>? metadata = null,
        CancellationToken ct = default)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(parser);
        long timeoutNano = 0;
        if (timeout is { } t)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(t, TimeSpan.Zero, nameof(timeout));
            timeoutNano = t.Ticks > long.MaxValue / 100 ? long.MaxValue : t.Ticks * 100;
        }

        if (!WireEncoding.TryEncodeRequest(service, method, request, timeoutNano, metadata, out var frame))
        {
            // Same as the Go client: refuse locally instead of sending a frame the server would discard.
            throw new TtrpcException(
                StatusCode.ResourceExhausted, $"ttrpc: request for {service}/{method} exceeds maximum message size of {FrameCodec.MaxPayload}");
        }

        using var deadline = timeout is { } local ? new CancellationTokenSource(local) : null;
        using var linked = deadline is null ? null : CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        var token = linked?.Token ?? ct;
        var completion = new TaskCompletionSource<Response>(TaskCreationOptions.RunContinuationsAsynchronously);
        uint streamId = 0;
        try
        {
            streamId = await SendRequestAsync(frame, completion, token).ConfigureAwait(false);
            var response = await completion.Task.WaitAsync(token).ConfigureAwait(false);
            if (response.Status is { Code: not 0 } status)
            {
                throw new TtrpcException((StatusCode)status.Code, status.Message);
            }

            try
            {
                return parser.ParseFrom(response.Payload);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new TtrpcException(StatusCode.Internal, $"ttrpc: malformed {service}/{method} response: {ex.Message}", ex);
            }
        }
        catch (OperationCanceledException) when (deadline?.IsCancellationRequested == true && !ct.IsCancellationRequested)
        {
            throw new TtrpcException(StatusCode.DeadlineExceeded, $"ttrpc: {service}/{method} timed out after {timeout}");
        }
        finally
        {
            if (streamId != 0)
            {
                lock (_gate)
                {
                    _pending.Remove(streamId);
                }
            }
        }
    }

    /// <summary>Closes the connection; pending calls fail with UNAVAILABLE.</summary>
    public async ValueTask DisposeAsync()
    {
        Close("ttrpc: client closed");
        await _readLoop.ConfigureAwait(false);
    }

    /// <summary>Allocates the stream id and writes the frame under the write lock, so ids reach the server in increasing order.</summary>
    private async Task<uint> SendRequestAsync(OutgoingFrame frame, TaskCompletionSource<Response> completion, CancellationToken ct)
    {
        try
        {
            await _writeLock.WaitAsync(ct).ConfigureAwait(false);
            uint streamId;
            try
            {
                streamId = _nextStreamId;
                lock (_gate)
                {
                    if (_isClosed)
                    {
                        throw new TtrpcException(StatusCode.Unavailable, _closeReason);
                    }

                    // Registered before sending so an instant response finds its caller.
                    _pending.Add(streamId, completion);
                }

                _nextStreamId += 2;
                frame.SetStreamId(streamId);
                try
                {
                    // Not cancellable: abandoning a half-written frame would corrupt the stream.
                    await _connection.WriteAsync(frame.Memory, _lifetime.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
                {
                    Close($"ttrpc: connection lost while sending: {ex.Message}");
                    throw new TtrpcException(StatusCode.Unavailable, $"ttrpc: connection lost while sending: {ex.Message}", ex);
                }
            }
            finally
            {
                _writeLock.Release();
            }

            return streamId;
        }
        finally
        {
            frame.Return();
        }
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "whatever ends the read loop (I/O error, disposal, a bug) leaves the connection unusable: pending calls fail with UNAVAILABLE and the reason")]
    private async Task ReadLoopAsync()
    {
        var ct = _lifetime.Token;
        string reason = "ttrpc: connection closed by the server";
        try
        {
            while (await _reader.ReadHeaderAsync(ct).ConfigureAwait(false) is { } header)
            {
                if (header.Type != FrameType.Response)
                {
                    await _reader.SkipAsync(header.Length, ct).ConfigureAwait(false);
                    continue;
                }

                if (header.IsOversized)
                {
                    await _reader.SkipAsync(header.Length, ct).ConfigureAwait(false);
                    Fail(header.StreamId, new TtrpcException(
                        StatusCode.ResourceExhausted,
                        $"ttrpc: response length {header.Length} exceeds maximum message size of {FrameCodec.MaxPayload}"));
                    continue;
                }

                var response = await ReadResponseAsync((int)header.Length, ct).ConfigureAwait(false);
                if (response is null)
                {
                    Fail(header.StreamId, new TtrpcException(StatusCode.Internal, "ttrpc: malformed ttrpc.Response"));
                    continue;
                }

                TaskCompletionSource<Response>? completion;
                lock (_gate)
                {
                    _pending.Remove(header.StreamId, out completion);
                }

                // No caller: it timed out or was cancelled already.
                completion?.TrySetResult(response);
            }
        }
        catch (Exception ex)
        {
            // Whatever ended the loop (I/O error, disposal, a bug), the connection is unusable now.
            reason = $"ttrpc: connection lost: {ex.Message}";
        }
        finally
        {
            Close(reason);
        }
    }

    private async ValueTask<Response?> ReadResponseAsync(int length, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            await _reader.ReadExactlyAsync(buffer.AsMemory(0, length), ct).ConfigureAwait(false);
            return TryParse(buffer.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        static Response? TryParse(ReadOnlySpan<byte> payload)
        {
            try
            {
                return Response.Parser.ParseFrom(payload);
            }
            catch (InvalidProtocolBufferException)
            {
                return null;
            }
        }
    }

    private void Fail(uint streamId, TtrpcException error)
    {
        TaskCompletionSource<Response>? completion;
        lock (_gate)
        {
            _pending.Remove(streamId, out completion);
        }

        completion?.TrySetException(error);
    }

    private void Close(string reason)
    {
        TaskCompletionSource<Response>[] pending;
        lock (_gate)
        {
            if (_isClosed)
            {
                return;
            }

            _isClosed = true;
            _closeReason = reason;
            pending = [.. _pending.Values];
            _pending.Clear();
        }

        _lifetime.Cancel();
        _connection.Close();
        foreach (var completion in pending)
        {
            completion.TrySetException(new TtrpcException(StatusCode.Unavailable, reason));
        }

        _closed.TrySetResult();
    }
}
