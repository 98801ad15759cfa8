using System.Net.Sockets;

namespace Shim.Ttrpc.Transport;

/// <summary>The default transport: a connected <see cref="System.Net.Sockets.Socket"/> (uses the .NET socket engine).</summary>
public sealed class SocketTtrpcConnection : ITtrpcConnection
{
    /// <summary>Wraps <paramref name="socket"/>; the connection owns it from now on.</summary>
    public SocketTtrpcConnection(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Socket = socket;
    }

    /// <summary>The underlying socket (for peer-credential checks in an accept filter).</summary>
    public Socket Socket { get; }

    /// <summary>Connects to the unix socket at <paramref name="path"/>; failures surface as <see cref="SocketException"/>.</summary>
    public static async ValueTask<SocketTtrpcConnection> ConnectAsync(string path, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new SocketTtrpcConnection(socket);
    }

    /// <inheritdoc />
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct) => Socket.ReceiveAsync(buffer, SocketFlags.None, ct);

    /// <inheritdoc />
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int sent = await Socket.SendAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            buffer = buffer[sent..];
        }
    }

    /// <inheritdoc />
    public void Close()
    {
        try
        {
            Socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already gone; disposing below is all that is left to do.
        }

        Socket.Dispose();
    }
}

/// <summary>The default listener: a bound, listening <see cref="System.Net.Sockets.Socket"/>; closing it stays with its owner.</summary>
internal sealed class SocketTtrpcListener(Socket listener) : ITtrpcListener
{
    /// <inheritdoc />
    public async ValueTask<ITtrpcConnection> AcceptAsync(CancellationToken ct)
    {
        try
        {
            return new SocketTtrpcConnection(await listener.AcceptAsync(ct).ConfigureAwait(false));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted)
        {
            throw new ObjectDisposedException(nameof(SocketTtrpcListener), ex);
        }
    }
}
