using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Shim.Core.Cli;
using Shim.Os;

namespace Shim.Host;

/// <summary>
/// The `start` action: bind the shim socket, hand it to a daemonised copy of this binary as fd 3,
/// write the bundle's `address` file and print the address. It must be quick: containerd waits for it.
/// </summary>
internal static class StartCommand
{
    public static int Run(ShimArgs args)
    {
        if (args.Namespace.Length == 0)
        {
            throw new ArgumentException("shim namespace cannot be empty");
        }
        if (args.Id.Length == 0)
        {
            throw new ArgumentException("shim id cannot be empty");
        }
        string bundle = Directory.GetCurrentDirectory();
        // containerd gives runtime options on stdin; only shim_cgroup would matter here (not yet used)
        DrainStdin();
        string group = ShimAddress.GroupOf(File.ReadAllBytes(Path.Combine(bundle, "config.json")), args.Id);
        string address = ShimAddress.For(args.Address, args.Namespace, group);
        string path = ShimAddress.PathOf(address);

        var listener = Bind(path);
        if (listener is null)
        {
            // a shim of the same group already serves this socket: containerd connects to it
            Answer(bundle, address);
            return 0;
        }

        var daemonArgs = new List<string> { Environment.ProcessPath ?? "/proc/self/exe", "-namespace", args.Namespace, "-id", args.Id, "-address", args.Address };
        if (args.Debug)
        {
            daemonArgs.Add("-debug");
        }
        Spawner.Spawn(new SpawnOptions
        {
            Path = Environment.ProcessPath ?? "/proc/self/exe",
            Args = daemonArgs,
            Environment = DaemonEnvironment(),
            WorkingDirectory = bundle,
            Fds = new Dictionary<int, SafeHandle> { [3] = listener.SafeHandle },
            NewProcessGroup = true,
        });
        Answer(bundle, address);
        return 0;
    }

    private static void Answer(string bundle, string address)
    {
        File.WriteAllText(Path.Combine(bundle, "address"), address);
        using var stdout = Console.OpenStandardOutput();
        stdout.Write(Encoding.UTF8.GetBytes(address));
        stdout.Flush();
    }

    private static Socket? Bind(string path)
    {
        string dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        for (int attempt = 0; ; attempt++)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Bind(new UnixDomainSocketEndPoint(path));
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                socket.Listen(128);
                return socket;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt == 0)
            {
                socket.Dispose();
                if (IsServing(path))
                {
                    return null;
                }
                File.Delete(path); // stale socket of a dead shim
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    private static bool IsServing(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            var connect = probe.ConnectAsync(new UnixDomainSocketEndPoint(path));
            return connect.Wait(TimeSpan.FromMilliseconds(100)) && probe.Connected;
        }
        catch (AggregateException)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static void DrainStdin()
    {
        try
        {
            using var stdin = Console.OpenStandardInput();
            var buffer = new byte[4096];
            while (stdin.Read(buffer) > 0)
            {
            }
        }
        catch (IOException)
        {
        }
    }

    private static List<string> DaemonEnvironment()
    {
        var env = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            string key = (string)e.Key;
            if (key.StartsWith("DOTNET_GC", StringComparison.Ordinal))
            {
                continue;
            }
            env.Add($"{key}={e.Value}");
        }
        // a small gen0 budget keeps the long-lived daemon's heap near 1 MiB (PERFORMANCE.md)
        env.Add("DOTNET_GCgen0size=80000");
        return env;
    }
}
