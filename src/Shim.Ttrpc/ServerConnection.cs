using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using Google.Protobuf;
using Shim.Ttrpc.Wire;
using Shim.Ttrpc.Transport;

namespace Shim.Ttrpc;

/// <summary>
/// One accepted connection: a single read loop decodes frames and hands each call to the thread
/// pool, so calls run concurrently and answer in any order; writes are serialized by a lock.
/// </summary>
/// <remarks>
/// What one connection can make the server hold is bounded: the 4 KiB read buffer, one payload
/// buffer that grows with the bytes that actually arrived (at most the 4 MiB frame limit), and
/// at most <see cref="TtrpcServerOptions.MaxRequestsInFlight"/> calls, each with its decoded
/// request (under 4 MiB) and, once answered, its response frame until written.
/// A connection made over <see cref="TtrpcServerOptions.MaxConnections"/> is a refusal: it reads
/// one header, answers that stream RESOURCE_EXHAUSTED and closes.
/// </remarks>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "_lifetime and _writeLock: no timer and no wait handle is ever requested, so nothing is left to release; calls in flight may still use it after the connection closed")]
internal sealed class ServerConnection : IMidFrameObserver
{
    // A payload is received into a buffer this big first, doubled as more arrives: a header that
    // promises 4 MiB and then stalls costs the server nothing until the bytes are really sent.
    private const int FirstPayloadBuffer = 64 * 1024;

    private readonly TtrpcServer _server;
    private readonly string? _refusal;
    private readonly ITtrpcConnection _connection;
    private readonly FrameReader _reader;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    // Cancelled by Close(): ends the read loop and every handler's token.
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private int _inFlight;           // guarded by _gate
    private bool _draining;          // guarded by _gate
    private int _closed;             // Interlocked: 1 once Close() ran
    private CancellationTokenRegistration _externalStop;

    /// <summary>A connection to serve, or with <paramref name="refusal"/>, one to answer that status once and close.</summary>
    public ServerConnection(TtrpcServer server, ITtrpcConnection connection, string? refusal = null)
    {
        _server = server;
        _connection = connection;
        _refusal = refusal;
        _reader = new FrameReader(connection, this);
    }

    /// <summary>Completes when the read loop has ended and the connection is closed.</summary>
    public Task Completion => _completion.Task;

    /// <summary>True for a connection over the server's bound, which only gets a RESOURCE_EXHAUSTED answer.</summary>
    public bool IsRefusal => _refusal is not null;

    /// <summary>The transport (to name the peer in a log line).</summary>
    public ITtrpcConnection Connection => _connection;

    /// <summary>Serves the connection until the peer goes away, an I/O error, <paramref name="ct"/> or <see cref="Close"/>.</summary>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "a bug in one connection must not take the server down; it only costs this connection and is logged")]
    public async Task RunAsync(CancellationToken ct)
    {
        // Keep the caller (the accept loop) free even if frames are already waiting.
        await Task.Yield();
        _externalStop = ct.UnsafeRegister(static s => ((ServerConnection)s!).Close(), this);
        try
        {
            if (_refusal is null)
            {
                await ReadLoopAsync(_lifetime.Token).ConfigureAwait(false);
            }
            else
            {
                await RefuseAsync(_refusal, _lifetime.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (IsConnectionEnd(ex))
        {
            // A peer vanishing (EOF, reset) is routine; only report what looks like a real fault.
            bool routine = ex is EndOfStreamException
                || ex is SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.Shutdown };
            if (!_lifetime.IsCancellationRequested && !routine)
            {
                _server.LogMessage($"ttrpc: connection read failed: {ex.Message}");
            }
        }
        catch (Exception ex)
        {
            // A bug here must not take the server down; it only costs this connection.
            _server.LogMessage($"ttrpc: connection failed unexpectedly: {ex}");
        }
        finally
        {
            Close();
            _externalStop.Unregister();
            _server.Stalls.Leave(this);
            _server.Remove(this);
            _completion.TrySetResult();
        }
    }

    /// <summary>Graceful shutdown: refuse new calls, close once the in-flight ones have answered.</summary>
    public void BeginDrain()
    {
        bool idle;
        lock (_gate)
        {
            _draining = true;
            idle = _inFlight == 0;
        }

        if (idle)
        {
            Close();
        }
    }

    /// <summary>Closes the connection and cancels every in-flight handler; idempotent.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _lifetime.Cancel();
        _connection.Close();
    }

    /// <inheritdoc />
    void IMidFrameObserver.WaitingInsideFrame() => _server.Stalls.Enter(this);

    /// <inheritdoc />
    void IMidFrameObserver.FrameCompleted() => _server.Stalls.Leave(this);

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        uint lastStreamId = 0;
        while (await _reader.ReadHeaderAsync(ct).ConfigureAwait(false) is { } header)
        {
            var decision = RequestDecoder.Classify(header, ref lastStreamId);
            if (decision.Action != FrameAction.Dispatch)
            {
                await _reader.SkipAsync(header.Length, ct).ConfigureAwait(false);
                if (decision.Action == FrameAction.Reject)
                {
                    await SendStatusAsync(header.StreamId, decision.Code, decision.Message).ConfigureAwait(false);
                }

                continue;
            }

            if (AtInFlightBound())
            {
                // Answered at once rather than read later (backpressure): containerd keeps a Wait in
                // flight per process on its connection and ends them with a Kill or Delete sent on
                // the same connection, so a reader that paused until some call finished could wait
                // for ever. Skipping keeps the payload out of memory; the answer is one small frame.
                await _reader.SkipAsync(header.Length, ct).ConfigureAwait(false);
                await SendStatusAsync(header.StreamId, StatusCode.ResourceExhausted, _server.InFlightRefusal).ConfigureAwait(false);
                continue;
            }

            var request = await ReadRequestAsync((int)header.Length, ct).ConfigureAwait(false);
            if (request is null)
            {
                await SendStatusAsync(header.StreamId, StatusCode.InvalidArgument, RequestDecoder.MalformedEnvelope).ConfigureAwait(false);
                continue;
            }

            await DispatchAsync(header.StreamId, request).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Over a connection's bound: waits for the first header (the wait counts as one inside a
    /// frame, so a peer that sends nothing goes after the frame timeout), answers its stream
    /// with <paramref name="status"/> and returns; the payload is never read.
    /// </summary>
    private async Task RefuseAsync(string status, CancellationToken ct)
    {
        _server.Stalls.Enter(this);
        if (await _reader.ReadHeaderAsync(ct).ConfigureAwait(false) is { } header)
        {
            await SendStatusAsync(header.StreamId, StatusCode.ResourceExhausted, status).ConfigureAwait(false);
        }
    }

    private bool AtInFlightBound()
    {
        lock (_gate)
        {
            return _inFlight >= _server.Options.MaxRequestsInFlight;
        }
    }

    /// <summary>Reads a Request envelope through a pooled buffer that grows as the payload arrives; null when it does not parse.</summary>
    private async ValueTask<Request?> ReadRequestAsync(int length, CancellationToken ct)
    {
        int size = Math.Min(length, FirstPayloadBuffer);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            int filled = 0;
            while (true)
            {
                await _reader.ReadExactlyAsync(buffer.AsMemory(filled, size - filled), ct).ConfigureAwait(false);
                filled = size;
                if (filled == length)
                {
                    break;
                }

                size = (int)Math.Min(length, 2L * size);
                var larger = ArrayPool<byte>.Shared.Rent(size);
                buffer.AsSpan(0, filled).CopyTo(larger);
                var smaller = buffer;
                buffer = larger;
                ArrayPool<byte>.Shared.Return(smaller);
            }

            return RequestDecoder.TryParseEnvelope(buffer.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "the call is handed to the thread pool; RunCallAsync disposes it when it ends")]
    private async ValueTask DispatchAsync(uint streamId, Request request)
    {
        var resolved = RequestDecoder.Resolve(_server.Registry, request);
        if (resolved.Handler is null)
        {
            await SendStatusAsync(streamId, resolved.Code, resolved.Error).ConfigureAwait(false);
            return;
        }

        bool refused;
        lock (_gate)
        {
            refused = _draining;
            if (!refused)
            {
                _inFlight++;
            }
        }

        if (refused)
        {
            await SendStatusAsync(streamId, StatusCode.Unavailable, "ttrpc: server shutdown").ConfigureAwait(false);
            return;
        }

        _server.Options.Activity?.Invoke();
        var call = new ServerCall(this, streamId, resolved.Handler, resolved.Message!, request, _lifetime.Token);
        ThreadPool.UnsafeQueueUserWorkItem(call, preferLocal: false);
    }

    /// <summary>Runs one call to completion and answers it; never throws.</summary>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "a handler's exception becomes the call's status; a failed answer closes the connection; never throws onto the thread pool")]
    internal async Task RunCallAsync(ServerCall call)
    {
        try
        {
            OutgoingFrame frame;
            try
            {
                var response = await call.Handler.InvokeAsync(call.Message, call.Context).ConfigureAwait(false);
                frame = EncodeResult(call.StreamId, response);
            }
            catch (Exception ex)
            {
                var (code, message) = MapError(ex, call);
                frame = WireEncoding.EncodeStatus(call.StreamId, code, message);
            }

            await SendAsync(frame).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsConnectionEnd(ex))
        {
            // The connection is gone; nobody is left to answer.
            Close();
        }
        catch (Exception ex)
        {
            _server.LogMessage($"ttrpc: answering {call.Context.Service}/{call.Context.Method} failed: {ex}");
            Close();
        }
        finally
        {
            call.Dispose();
            bool closeNow;
            lock (_gate)
            {
                _inFlight--;
                closeNow = _draining && _inFlight == 0;
            }

            if (closeNow)
            {
                Close();
            }

            _server.Options.Activity?.Invoke();
        }
    }

    private static OutgoingFrame EncodeResult(uint streamId, IMessage? response)
    {
        if (response is null)
        {
            return WireEncoding.EncodeStatus(streamId, StatusCode.Internal, "handler returned no response");
        }

        return WireEncoding.TryEncodeResponse(streamId, response, out var frame)
            ? frame
            : WireEncoding.EncodeStatus(
                streamId, StatusCode.ResourceExhausted, $"response exceeds maximum message size of {FrameCodec.MaxPayload}");
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "a throwing error mapper must still produce an answer (UNKNOWN) for the call")]
    private (StatusCode Code, string Message) MapError(Exception ex, ServerCall call)
    {
        if (ex is OperationCanceledException && call.DeadlineExpired && !_lifetime.IsCancellationRequested)
        {
            return (StatusCode.DeadlineExceeded, "context deadline exceeded");
        }

        (StatusCode Code, string Message) mapped;
        var mapper = _server.Options.ErrorMapper;
        try
        {
            mapped = mapper is null ? DefaultErrorMapper(ex) : mapper(ex);
        }
        catch (Exception mapperFailure)
        {
            _server.LogMessage($"ttrpc: error mapper threw: {mapperFailure}");
            mapped = (StatusCode.Unknown, ex.Message);
        }

        // An error must never read as success: OK with no payload would look like a valid empty reply.
        return mapped.Code == StatusCode.OK ? (StatusCode.Unknown, mapped.Message) : mapped;
    }

    internal static (StatusCode Code, string Message) DefaultErrorMapper(Exception ex) => ex switch
    {
        TtrpcException t => (t.Code, t.Message),
        OperationCanceledException => (StatusCode.Cancelled, "context canceled"),
        _ => (StatusCode.Unknown, ex.Message),
    };

    private ValueTask SendStatusAsync(uint streamId, StatusCode code, string message) =>
        SendAsync(WireEncoding.EncodeStatus(streamId, code, message));

    /// <summary>Writes one whole frame under the write lock and returns its buffer to the pool.</summary>
    private async ValueTask SendAsync(OutgoingFrame frame)
    {
        try
        {
            var ct = _lifetime.Token;
            await _writeLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await _connection.WriteAsync(frame.Memory, ct).ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        finally
        {
            frame.Return();
        }
    }

    private static bool IsConnectionEnd(Exception ex) =>
        ex is OperationCanceledException or SocketException or ObjectDisposedException or EndOfStreamException or IOException;
}
