using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Shim.E2E.Tests.Cri.V1;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// A CRI client (what kubelet or crictl would be) on containerd's grpc unix socket: HTTP/2
/// without TLS to http://localhost, each connection opened on the socket by ConnectCallback.
/// </summary>
internal sealed class CriClient : IDisposable
{
    private readonly GrpcChannel _channel;

    public CriClient(string socket)
    {
        Socket = socket;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
            EnableMultipleHttp2Connections = false,
        };
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        });
        Runtime = new RuntimeService.RuntimeServiceClient(_channel);
        Images = new ImageService.ImageServiceClient(_channel);
    }

    public string Socket { get; }

    public RuntimeService.RuntimeServiceClient Runtime { get; }

    public ImageService.ImageServiceClient Images { get; }

    /// <summary>Call options with a deadline (default 60 s) and the cancellation token.</summary>
    public static CallOptions Opts(CancellationToken ct, TimeSpan? timeout = null) =>
        new(deadline: DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60)), cancellationToken: ct);

    public void Dispose() => _channel.Dispose();
}

/// <summary>Stops and removes every pod of a CRI daemon (disposal of a failed test).</summary>
internal static class CriCleanup
{
    public static async Task RemoveAllPodsAsync(string socket, List<string> notes, TimeSpan timeout)
    {
        try
        {
            using var cri = new CriClient(socket);
            var pods = await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), CriClient.Opts(CancellationToken.None, timeout));
            foreach (var pod in pods.Items)
            {
                notes.Add($"removing leftover pod {pod.Id} ({pod.Metadata?.Name})");
                try
                {
                    await cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id }, CriClient.Opts(CancellationToken.None, timeout));
                    await cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id }, CriClient.Opts(CancellationToken.None, timeout));
                }
                catch (RpcException e)
                {
                    notes.Add($"pod {pod.Id}: {e.StatusCode}: {e.Status.Detail}");
                    if (e.StatusCode == StatusCode.DeadlineExceeded) { return; }   // CRI is stuck: the daemon gets killed next
                }
            }
        }
        catch (RpcException e) { notes.Add($"CRI cleanup: {e.Status.StatusCode} {e.Status.Detail}"); }
        catch (HttpRequestException e) { notes.Add($"CRI cleanup: {e.Message}"); }
    }
}
