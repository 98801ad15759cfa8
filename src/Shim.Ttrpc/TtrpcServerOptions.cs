using Shim.Ttrpc.Transport;
namespace Shim.Ttrpc;

/// <summary>Optional behaviour of a <see cref="TtrpcServer"/>.</summary>
public sealed class TtrpcServerOptions
{
    /// <summary>Default of <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 256;

    /// <summary>Default of <see cref="MaxRequestsInFlight"/>.</summary>
    public const int DefaultMaxRequestsInFlight = 128;

    /// <summary>Default of <see cref="FrameTimeout"/>.</summary>
    public static readonly TimeSpan DefaultFrameTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Called once per connection before any frame is read; false closes it (the shim uses this
    /// for the SO_PEERCRED same-uid check on its own transport; the default transport hands over a
    /// <see cref="SocketTtrpcConnection"/>). An exception counts as false.
    /// </summary>
    public Func<ITtrpcConnection, bool>? AcceptFilter { get; init; }

    /// <summary>
    /// Maps a handler exception to a status. Default: <see cref="TtrpcException"/> → its code,
    /// <see cref="OperationCanceledException"/> → Cancelled, anything else → Unknown with the
    /// exception message. Whatever the mapper says, a cancellation caused by the request's own
    /// deadline is answered DeadlineExceeded.
    /// </summary>
    public Func<Exception, (StatusCode Code, string Message)>? ErrorMapper { get; init; }

    /// <summary>
    /// Called when a call is dispatched and again once it has been answered, on the thread that
    /// did so; must be cheap and must not throw (the shim's idle memory trimmer listens here).
    /// </summary>
    public Action? Activity { get; init; }

    /// <summary>Diagnostics sink for connection-level events and errors; may be null.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>
    /// Sink for a bound being hit (connections refused, stalled peers dropped): at most one line
    /// per burst. Falls back to <see cref="Log"/> when null.
    /// </summary>
    public Action<string>? Warn { get; init; }

    /// <summary>Names a connection's peer in those lines ("pid 12, uid 0"); null or a throw leaves it out.</summary>
    public Func<ITtrpcConnection, string?>? DescribePeer { get; init; }

    /// <summary>
    /// Connections served at once. One past it is answered RESOURCE_EXHAUSTED on the stream of its
    /// first request and closed (closed unanswered when many such are already waiting to be told).
    /// containerd opens one per container it manages through this server, ctr one per command.
    /// </summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>
    /// Calls one connection may have running (dispatched and not yet answered). A request past it
    /// is answered RESOURCE_EXHAUSTED at once and not run.
    /// </summary>
    public int MaxRequestsInFlight { get; init; } = DefaultMaxRequestsInFlight;

    /// <summary>
    /// How long a frame may take to arrive once the peer has left the server waiting inside it;
    /// past it the connection is closed. <see cref="Timeout.InfiniteTimeSpan"/> waits for ever.
    /// A connection idle between frames is never timed out.
    /// </summary>
    public TimeSpan FrameTimeout { get; init; } = DefaultFrameTimeout;

    /// <summary>The clock of <see cref="FrameTimeout"/>.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}
