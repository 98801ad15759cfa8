using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using Shim.Ttrpc.Transport;

namespace Shim.Ttrpc;

/// <summary>A ttrpc server: accepts connections (unix sockets by default) and dispatches unary calls to registered handlers.</summary>
public sealed class TtrpcServer : IAsyncDisposable
{
    private const int MaxAcceptBackoffMs = 1000;

    // Connections over the bound waiting for their first header to be told RESOURCE_EXHAUSTED;
    // more than this are closed unanswered, so a flood of them costs at most this many descriptors.
    private const int MaxPendingRefusals = 16;

    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "no timer, nothing to release; ServeAsync may still link to it after DisposeAsync")]
    private readonly CancellationTokenSource _acceptStop = new();
    private readonly Lock _gate = new();
    private readonly HashSet<ServerConnection> _connections = [];  // guarded by _gate: served, counted against the bound
    private readonly HashSet<ServerConnection> _refusals = [];     // guarded by _gate: over the bound, to be answered
    private readonly RefusalBursts _bursts;                        // guarded by _gate
    private readonly string _connectionRefusal;
    private bool _shuttingDown;                                    // guarded by _gate

    /// <summary>Creates a server over <paramref name="registry"/>; methods may still be registered afterwards.</summary>
    public TtrpcServer(TtrpcServiceRegistry registry, TtrpcServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Registry = registry;
        Options = options ?? new TtrpcServerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.MaxConnections, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.MaxRequestsInFlight, 1, nameof(options));
        if (Options.FrameTimeout <= TimeSpan.Zero && Options.FrameTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(options), Options.FrameTimeout, "the frame timeout must be positive or infinite");
        }

        ArgumentNullException.ThrowIfNull(Options.Time, nameof(options));
        _bursts = new RefusalBursts(Options.Time);
        _connectionRefusal = $"ttrpc: too many connections to this server ({Options.MaxConnections})";
        InFlightRefusal = $"ttrpc: too many requests in flight on this connection ({Options.MaxRequestsInFlight})";
        Stalls = new StallSweep(this, Options.FrameTimeout, Options.Time);
    }

    /// <summary>Number of connections currently served (those counted against <see cref="TtrpcServerOptions.MaxConnections"/>).</summary>
    public int ConnectionCount
    {
        get
        {
            lock (_gate)
            {
                return _connections.Count;
            }
        }
    }

    internal TtrpcServiceRegistry Registry { get; }

    internal TtrpcServerOptions Options { get; }

    /// <summary>The connections waiting inside a frame, and the one timer that drops those stalled there.</summary>
    internal StallSweep Stalls { get; }

    /// <summary>The status message of a request over <see cref="TtrpcServerOptions.MaxRequestsInFlight"/>.</summary>
    internal string InFlightRefusal { get; }

    /// <summary>
    /// Accepts connections on an already bound and listening socket until <see cref="ShutdownAsync"/>,
    /// disposal or <paramref name="ct"/>; cancelling <paramref name="ct"/> also closes the connections
    /// accepted here. The listener stays open: its owner disposes it and removes the socket file.
    /// </summary>
    public Task ServeAsync(Socket listener, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(listener);
        return ServeAsync(new SocketTtrpcListener(listener), ct);
    }

    /// <summary>
    /// Accepts connections from <paramref name="listener"/> until <see cref="ShutdownAsync"/>, disposal
    /// or <paramref name="ct"/>; cancelling <paramref name="ct"/> also closes the connections accepted
    /// here. The listener stays open: its owner closes it.
    /// </summary>
    public async Task ServeAsync(ITtrpcListener listener, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(listener);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, _acceptStop.Token);
        int backoffMs = 0;
        while (!stop.IsCancellationRequested)
        {
            ITtrpcConnection connection;
            try
            {
                connection = await listener.AcceptAsync(stop.Token).ConfigureAwait(false);
                backoffMs = 0;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted)
            {
                break;
            }
            catch (Exception ex) when (ex is SocketException or IOException)
            {
                // Transient failures such as EMFILE: back off like the Go server instead of spinning.
                backoffMs = Math.Min(Math.Max(5, backoffMs * 2), MaxAcceptBackoffMs);
                LogMessage($"ttrpc: accept failed ({ex.Message}), retrying in {backoffMs} ms");
                try
                {
                    await Task.Delay(backoffMs, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                continue;
            }

            _ = ServeConnectionAsync(connection, ct);
        }
    }

    /// <summary>
    /// Serves one already-connected socket until the peer leaves, <paramref name="ct"/>, shutdown or
    /// an I/O error; the server owns and closes the socket. Applies <see cref="TtrpcServerOptions.AcceptFilter"/> first.
    /// </summary>
    public Task ServeConnectionAsync(Socket connection, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return ServeConnectionAsync(new SocketTtrpcConnection(connection), ct);
    }

    /// <summary>
    /// Serves one connection until the peer leaves, <paramref name="ct"/>, shutdown or an I/O error;
    /// the server owns and closes it. Applies <see cref="TtrpcServerOptions.AcceptFilter"/> first.
    /// </summary>
    public Task ServeConnectionAsync(ITtrpcConnection connection, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (!Admit(connection))
        {
            connection.Close();
            return Task.CompletedTask;
        }

        ServerConnection? served = null;
        RefusalReport report;
        lock (_gate)
        {
            if (_shuttingDown)
            {
                connection.Close();
                return Task.CompletedTask;
            }

            if (_connections.Count < Options.MaxConnections)
            {
                served = new ServerConnection(this, connection);
                _connections.Add(served);
                report = _bursts.Admitted();
            }
            else
            {
                if (_refusals.Count < MaxPendingRefusals)
                {
                    served = new ServerConnection(this, connection, _connectionRefusal);
                    _refusals.Add(served);
                }

                report = _bursts.Refused();
            }
        }

        Report(report, connection);
        if (served is null)
        {
            connection.Close();
            return Task.CompletedTask;
        }

        _ = served.RunAsync(ct);
        return served.Completion;
    }

    /// <summary>
    /// Stops accepting, lets in-flight calls answer (new calls get UNAVAILABLE) and closes each
    /// connection once idle. If <paramref name="ct"/> fires first, the remaining connections are
    /// closed at once and their handlers cancelled; this method then returns normally.
    /// Do not await it from inside a handler: it waits for that handler to answer.
    /// </summary>
    public async Task ShutdownAsync(CancellationToken ct)
    {
        var connections = BeginShutdown();
        foreach (var connection in connections)
        {
            connection.BeginDrain();
        }

        var all = Task.WhenAll(connections.Select(c => c.Completion));
        try
        {
            await all.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            LogMessage("ttrpc: shutdown deadline reached, closing busy connections");
            foreach (var connection in connections)
            {
                connection.Close();
            }

            await all.ConfigureAwait(false);
        }
    }

    /// <summary>Stops at once: no draining, every connection is closed and every handler cancelled.</summary>
    public async ValueTask DisposeAsync()
    {
        var connections = BeginShutdown();
        foreach (var connection in connections)
        {
            connection.Close();
        }

        await Task.WhenAll(connections.Select(c => c.Completion)).ConfigureAwait(false);
        Stalls.Dispose();
    }

    internal void Remove(ServerConnection connection)
    {
        lock (_gate)
        {
            if (!_connections.Remove(connection))
            {
                _refusals.Remove(connection);
            }
        }
    }

    internal void LogMessage(string message) => Options.Log?.Invoke(message);

    internal void LogWarning(string message) => (Options.Warn ?? Options.Log)?.Invoke(message);

    /// <summary>The peer as <see cref="TtrpcServerOptions.DescribePeer"/> names it; null when unknown.</summary>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "naming the peer only decorates a log line; failing to must not fail what is being logged")]
    internal string? DescribePeer(ITtrpcConnection connection)
    {
        try
        {
            return Options.DescribePeer?.Invoke(connection);
        }
        catch (Exception)
        {
            return null;
        }
    }

    private void Report(RefusalReport report, ITtrpcConnection connection)
    {
        int bound = Options.MaxConnections;
        switch (report.Kind)
        {
            case RefusalReportKind.BurstStarted:
                string? peer = DescribePeer(connection);
                LogWarning($"ttrpc: refusing connections over the bound of {bound}{(peer is null ? "" : $" (first from {peer})")}; more refusals are counted, not logged one by one");
                break;
            case RefusalReportKind.StillRefusing:
                LogWarning($"ttrpc: still refusing connections over the bound of {bound}: {report.Count} more since the last report");
                break;
            case RefusalReportKind.BurstEnded:
                LogWarning($"ttrpc: serving new connections again; {report.Count} more were refused over the bound of {bound}");
                break;
        }
    }

    private ServerConnection[] BeginShutdown()
    {
        ServerConnection[] connections;
        lock (_gate)
        {
            _shuttingDown = true;
            connections = [.. _connections, .. _refusals];
        }

        _acceptStop.Cancel();
        return connections;
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "a throwing accept filter refuses the connection (logged) instead of ending the accept loop")]
    private bool Admit(ITtrpcConnection connection)
    {
        var filter = Options.AcceptFilter;
        if (filter is null)
        {
            return true;
        }

        try
        {
            if (filter(connection))
            {
                return true;
            }

            LogMessage("ttrpc: connection refused by the accept filter");
        }
        catch (Exception ex)
        {
            LogMessage($"ttrpc: accept filter threw, refusing the connection: {ex.Message}");
        }

        return false;
    }
}
