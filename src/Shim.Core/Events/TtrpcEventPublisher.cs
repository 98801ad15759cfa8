using System.Diagnostics.CodeAnalysis;
using Containerd.Services.Events.Ttrpc.V1;
using Containerd.Types;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Logging;
using Shim.Protos;
using Shim.Ttrpc;
using Shim.Ttrpc.Transport;

namespace Shim.Core.Events;

/// <summary>
/// Forwards events over ttrpc to containerd's TTRPC_ADDRESS with one consumer, so order is kept.
/// A Forward that failed on the way (containerd away or slow) is retried, reconnecting with back-off,
/// until it is delivered or the shim stops: unlike the Go shim, such an event is not dropped after
/// five tries. One that containerd answered with a rejection (<see cref="IsRejection"/>) would fail
/// the same way forever, so it is dropped with an error line and the events behind it go on (the Go
/// shim drops it too, after its five tries).
/// </summary>
public sealed class TtrpcEventPublisher : IEventPublisher, IAsyncDisposable
{
    private const string Service = "containerd.services.events.ttrpc.v1.Events";
    private static readonly TimeSpan ForwardTimeout = TimeSpan.FromSeconds(5);

    private readonly string _address;
    private readonly string _namespace;
    private const int Capacity = 4096;
    private readonly EventBacklog<ForwardRequest> _queue = new(Capacity, IsCritical);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _consumer;
    private readonly ShimLogger _log;
    private long _published;
    private long _delivered;
    private long _rejected;
    private readonly Func<string, CancellationToken, ValueTask<ITtrpcConnection>> _connect;
    private TtrpcClient? _client;

    /// <summary>
    /// Starts the consumer for containerd at <paramref name="ttrpcAddress"/> (a socket path, optionally unix://),
    /// connecting through <paramref name="connect"/> (default: a .NET socket).
    /// </summary>
    public TtrpcEventPublisher(string ttrpcAddress, string ns, Func<string, CancellationToken, ValueTask<ITtrpcConnection>>? connect = null, ShimLogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(ttrpcAddress);
        _log = log ?? ShimLogger.Discard;
        _connect = connect ?? (static async (path, ct) => await SocketTtrpcConnection.ConnectAsync(path, ct).ConfigureAwait(false));
        _address = ttrpcAddress.StartsWith("unix://", StringComparison.Ordinal) ? ttrpcAddress["unix://".Length..] : ttrpcAddress;
        _namespace = ns;
        _consumer = Task.Run(ConsumeAsync);
    }

    /// <inheritdoc />
    public void Publish(IMessage evt)
    {
        var request = new ForwardRequest
        {
            Envelope = new Envelope
            {
                Timestamp = Timestamp.FromDateTime(DateTime.UtcNow),
                Namespace = _namespace,
                Topic = EventTopics.TopicOf(evt),
                Event = TypeUrls.Pack(evt),
            },
        };
        Interlocked.Increment(ref _published);
        var (shed, victim) = _queue.Enqueue(request);
        if (shed)
        {
            Interlocked.Increment(ref _delivered); // it will never be delivered; do not make FlushAsync wait for it
            _log.Error("event queue full: event dropped", ShimLog.Field("topic", victim!.Envelope.Topic) + " " + ShimLog.Field("dropped_total", _queue.Dropped));
        }
    }

    /// <summary>Events dropped because containerd was unreachable for too long.</summary>
    public long Dropped => _queue.Dropped;

    private static bool IsCritical(ForwardRequest r) =>
        r.Envelope.Topic is EventTopics.TaskExit or EventTopics.TaskOOM or EventTopics.TaskDelete;

    /// <inheritdoc />
    public async Task FlushAsync(TimeSpan timeout)
    {
        long target = Interlocked.Read(ref _published);
        var deadline = DateTime.UtcNow + timeout;
        while (Interlocked.Read(ref _delivered) < target && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _consumer.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        if (_client is not null)
        {
            await _client.DisposeAsync().ConfigureAwait(false);
        }
        _stop.Dispose();
    }

    /// <summary>Events containerd rejected (dropped, see <see cref="IsRejection"/>).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>
    /// True for an answer from containerd that a retry cannot change: the request itself is refused
    /// (containerd's exchange rejects an invalid envelope with InvalidArgument; a Forward larger than the
    /// message limit is ResourceExhausted). Everything else (UNAVAILABLE, deadlines, a lost connection,
    /// Unknown/Internal from a daemon shutting down) is worth another try.
    /// </summary>
    internal static bool IsRejection(Exception ex) => ex is TtrpcException
    {
        Code: StatusCode.InvalidArgument or StatusCode.ResourceExhausted or StatusCode.NotFound or StatusCode.AlreadyExists
            or StatusCode.PermissionDenied or StatusCode.FailedPrecondition or StatusCode.OutOfRange or StatusCode.Unimplemented
            or StatusCode.Unauthenticated,
    };

    private async Task ConsumeAsync()
    {
        var ct = _stop.Token;
        while (true)
        {
            var request = await _queue.PeekAsync(ct).ConfigureAwait(false);
            await DeliverAsync(request, ct).ConfigureAwait(false);
            _queue.Remove(request);
            Interlocked.Increment(ref _delivered);
        }
    }

    /// <summary>Returns once <paramref name="request"/> was delivered or rejected.</summary>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "any failure to reach containerd (socket, ttrpc, timeout) is retried: losing an event leaves a container running for ever in containerd's eyes")]
    private async Task DeliverAsync(ForwardRequest request, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                if (_client is null || _client.IsClosed)
                {
                    if (_client is not null)
                    {
                        await _client.DisposeAsync().ConfigureAwait(false);
                    }
                    _client = null;
                    _client = new TtrpcClient(await _connect(_address, ct).ConfigureAwait(false));
                }
                await _client.CallAsync(Service, "Forward", request, Empty.Parser, ForwardTimeout, null, ct).ConfigureAwait(false);
                if (attempt > 1)
                {
                    _log.Info("event delivered after retries", ShimLog.Field("topic", request.Envelope.Topic) + " " + ShimLog.Field("attempts", attempt));
                }
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex) when (IsRejection(ex))
            {
                Interlocked.Increment(ref _rejected);
                _log.Error("containerd rejected an event: dropped, the events after it go on",
                    ShimLog.Field("topic", request.Envelope.Topic) + " " + ShimLog.Field("attempts", attempt) + " " + ShimLog.Field("error", ex.Message));
                return;
            }
            catch (Exception ex)
            {
                if (attempt == 1 || attempt % 20 == 0)
                {
                    _log.Warn("forwarding event failed, will retry", ShimLog.Field("topic", request.Envelope.Topic) + " " + ShimLog.Field("error", ex.Message));
                }
                if (_client is not null)
                {
                    await _client.DisposeAsync().ConfigureAwait(false);
                    _client = null;
                }
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
            }
        }
    }
}
