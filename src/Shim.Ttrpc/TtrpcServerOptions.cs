using Shim.Ttrpc.Transport;
namespace Shim.Ttrpc;

/// <summary>Optional behaviour of a <see cref="TtrpcServer"/>.</summary>
public sealed class TtrpcServerOptions
{
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
}
