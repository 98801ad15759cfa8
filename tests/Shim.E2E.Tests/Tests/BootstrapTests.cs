using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Containerd.Runtime.Bootstrap.V1;
using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>
/// The `start` action driven by hand exactly as each containerd line drives it, since no Debian
/// daemon speaks 2.3's bootstrap yet: the answer format, a serving socket, and a clean exit on Shutdown.
/// </summary>
public sealed class BootstrapTests : E2ETest
{
    private static string ShimPath => Path.Combine(Prereqs.DistDir, "containerd-shim-runcsharp-v2");

    private async Task<(CommandResult Result, string Bundle)> StartAsync(string id, byte[] stdin, bool maxShimVersion, bool podSandbox = false)
    {
        string bundle = Path.Combine(Ctrd.Dir, "byhand", id);
        Directory.CreateDirectory(bundle);
        if (!podSandbox)
        {
            await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), """{"ociVersion":"1.0.2","annotations":{}}""", Ct);
        }
        var env = new Dictionary<string, string> { ["TTRPC_ADDRESS"] = Ctrd.Socket + ".ttrpc" };
        if (maxShimVersion)
        {
            env["MAX_SHIM_VERSION"] = "2";
            env["GRPC_ADDRESS"] = Ctrd.Socket;
            env["NAMESPACE"] = Ns;
        }
        var result = await Command.RunAsync("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", bundle, ShimPath, "-namespace", Ns, "-address", Ctrd.Socket, "-publish-binary", "/usr/bin/containerd", "-id", id, "start"],
            stdin, TimeSpan.FromSeconds(20), env, Ct);
        return (result, bundle);
    }

    private static async Task ShutDownAsync(string address)
    {
        string path = address["unix://".Length..];
        await using (var client = await TtrpcClient.ConnectAsync(path, Ct))
        {
            var connect = await client.CallAsync("containerd.task.v3.Task", "Connect", new ConnectRequest { Id = "none" }, ConnectResponse.Parser, TimeSpan.FromSeconds(10), null, Ct);
            Assert.True(connect.ShimPid > 0);
            await client.CallAsync("containerd.task.v2.Task", "Shutdown", new ShutdownRequest { Id = "none" }, Google.Protobuf.WellKnownTypes.Empty.Parser, TimeSpan.FromSeconds(10), null, Ct);
            var pid = (int)connect.ShimPid;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            // running: its /proc entry is there and it is no zombie (a gone entry reads as an IOException)
            async Task<bool> RunningAsync()
            {
                try { return !(await File.ReadAllTextAsync($"/proc/{pid}/stat", Ct)).Contains(") Z ", StringComparison.Ordinal); }
                catch (IOException) { return false; }
            }
            while (await RunningAsync() && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, Ct);
            }
            Assert.False(await RunningAsync(), "the shim did not exit after Shutdown");
        }
        Assert.False(File.Exists(path), "the shim left its socket behind");
    }

    [Fact]
    public async Task Containerd_2_3_bootstrap_params_get_a_protobuf_bootstrap_result()
    {
        OursOnly("bootstrap protocol of containerd 2.3");
        var bootstrap = new BootstrapParams { InstanceId = "boot1", Namespace = Ns, LogLevel = LogLevel.Debug, ContainerdTtrpcAddress = Ctrd.Socket + ".ttrpc", ContainerdGrpcAddress = Ctrd.Socket };
        var (r, bundle) = await StartAsync("boot1", bootstrap.ToByteArray(), maxShimVersion: true);
        Assert.True(r.ExitCode == 0, r.Describe());
        var result = BootstrapResult.Parser.ParseFrom(r.StdoutBytes);
        Assert.Equal((3, "ttrpc"), (result.Version, result.Protocol));
        Assert.StartsWith("unix:///run/containerd/s/", result.Address, StringComparison.Ordinal);
        Assert.Equal("/run/containerd/s", new FileInfo(Path.Combine(bundle, "s")).LinkTarget);
        await ShutDownAsync(result.Address);
    }

    [Fact]
    public async Task Containerd_1_7_and_2_0_get_json_version_2_and_1_6_a_plain_address()
    {
        OursOnly("one binary for every line");
        var (json, _) = await StartAsync("boot2", [], maxShimVersion: true);
        Assert.True(json.ExitCode == 0, json.Describe());
        using var doc = JsonDocument.Parse(json.StdoutBytes);
        Assert.Equal(2, doc.RootElement.GetProperty("version").GetInt32());
        Assert.Equal("ttrpc", doc.RootElement.GetProperty("protocol").GetString());
        await ShutDownAsync(doc.RootElement.GetProperty("address").GetString()!);

        var (plain, bundle) = await StartAsync("boot3", [], maxShimVersion: false);
        Assert.True(plain.ExitCode == 0, plain.Describe());
        Assert.Matches("^unix:///run/containerd/s/[0-9a-f]{64}$", plain.Stdout);
        Assert.Equal(plain.Stdout, await File.ReadAllTextAsync(Path.Combine(bundle, "address"), Ct));
        await ShutDownAsync(plain.Stdout);
    }

    [Fact]
    public async Task A_pod_sandbox_start_gets_json_version_3_so_its_containers_need_no_start_of_their_own()
    {
        OursOnly("pods without a pause container");
        // a bundle without config.json: containerd 2.x's shim sandboxer starting a pod, never 1.7
        var (r, _) = await StartAsync("pod1", [], maxShimVersion: true, podSandbox: true);
        Assert.True(r.ExitCode == 0, r.Describe());
        using var doc = JsonDocument.Parse(r.StdoutBytes);
        Assert.Equal(3, doc.RootElement.GetProperty("version").GetInt32());
        Assert.Equal("ttrpc", doc.RootElement.GetProperty("protocol").GetString());
        await ShutDownAsync(doc.RootElement.GetProperty("address").GetString()!);
    }

    [Fact]
    public async Task A_second_start_for_the_same_group_returns_the_running_shims_address()
    {
        OursOnly("grouping");
        var (first, _) = await StartAsync("g1", [], maxShimVersion: false);
        Assert.True(first.ExitCode == 0, first.Describe());
        // same group through the annotation, different task id
        string bundle2 = Path.Combine(Ctrd.Dir, "byhand", "g2");
        Directory.CreateDirectory(bundle2);
        await File.WriteAllTextAsync(Path.Combine(bundle2, "config.json"), """{"annotations":{"io.containerd.runc.v2.group":"g1"}}""", Ct);
        var second = await Command.RunAsync("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", bundle2, ShimPath, "-namespace", Ns, "-address", Ctrd.Socket, "-id", "g2", "start"], [], TimeSpan.FromSeconds(20), null, Ct);
        Assert.True(second.ExitCode == 0, second.Describe());
        Assert.Equal(first.Stdout, second.Stdout);
        await ShutDownAsync(first.Stdout);
    }

    /// <summary>The kernel's answer to PR_SCHED_CORE_GET for <paramref name="pid"/> (0: the asking process): a cookie, or an errno text.</summary>
    private static async Task<(ulong? Cookie, string Problem)> CoreSchedulingCookieAsync(int pid)
    {
        const string Script = "import ctypes,os,sys\nc=ctypes.c_ulong(0)\nr=ctypes.CDLL(None,use_errno=True).prctl(62,0,int(sys.argv[1]),0,ctypes.byref(c))\nprint(c.value if r==0 else 'errno: '+os.strerror(ctypes.get_errno()))";
        var r = (await Command.RunAsync("python3", ["-c", Script, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], [], TimeSpan.FromSeconds(20), null, Ct)).EnsureSuccess();
        string text = r.Stdout.Trim();
        return ulong.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out ulong cookie) ? (cookie, "") : (null, text);
    }

    [Fact]
    public async Task Sched_core_gives_the_shim_a_core_scheduling_cookie_and_start_fails_where_the_kernel_cannot()
    {
        string shim = Prereqs.IsStockRuntime ? ContainerdLines.Current.StockShim : ShimPath;
        string bundle = Path.Combine(Ctrd.Dir, "byhand", "sched1");
        Directory.CreateDirectory(bundle);
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), """{"ociVersion":"1.0.2","annotations":{}}""", Ct);
        var env = new Dictionary<string, string> { ["TTRPC_ADDRESS"] = Ctrd.Socket + ".ttrpc", ["SCHED_CORE"] = "1" };

        var r = await Command.RunAsync("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", bundle, shim, "-namespace", Ns, "-address", Ctrd.Socket, "-publish-binary", "/usr/bin/containerd", "-id", "sched1", "start"],
            [], TimeSpan.FromSeconds(20), env, Ct);

        var (own, problem) = await CoreSchedulingCookieAsync(0);
        if (own is null)
        {
            // a kernel without CONFIG_SCHED_CORE (EINVAL) or without SMT (ENODEV): containerd's shim fails start
            Assert.True(r.ExitCode != 0, $"the kernel has no core scheduling ({problem}) but start succeeded: {r.Describe()}");
            Assert.Contains("enable sched core support", r.Stderr + r.Stdout, StringComparison.Ordinal);
            if (!Prereqs.IsStockRuntime)
            {
                // containerd's 1.x shim writes it before it fails; ours leaves nothing behind
                Assert.False(File.Exists(Path.Combine(bundle, "address")), "a failed start wrote an address");
            }
            return;
        }
        Assert.True(r.ExitCode == 0, r.Describe());
        string address = r.Stdout.Trim();
        await using (var client = await TtrpcClient.ConnectAsync(address["unix://".Length..], Ct))
        {
            var connect = await client.CallAsync("containerd.task.v2.Task", "Connect", new ConnectRequest { Id = "sched1" }, ConnectResponse.Parser, TimeSpan.FromSeconds(10), null, Ct);
            var (cookie, why) = await CoreSchedulingCookieAsync((int)connect.ShimPid);
            Assert.True(cookie is > 0, $"the shim daemon has no core-scheduling cookie ({why})");
            Assert.NotEqual(own, cookie);
        }
        await ShutDownAsync(address);
    }

    [Fact]
    public async Task Info_prints_a_runtime_info_with_runcs_features()
    {
        OursOnly("-info of containerd 2.x");
        var r = await Command.RunAsync(ShimPath, ["-info"], [], TimeSpan.FromSeconds(20), null, Ct);
        Assert.True(r.ExitCode == 0, r.Describe());
        var info = Containerd.Types.RuntimeInfo.Parser.ParseFrom(r.StdoutBytes);
        Assert.Equal("io.containerd.runcsharp.v2", info.Name);
        Assert.Equal("types.containerd.io/opencontainers/runtime-spec/1/features/Features", info.Features.TypeUrl);
        using var features = JsonDocument.Parse(info.Features.Value.Memory);
        Assert.True(features.RootElement.TryGetProperty("ociVersionMax", out _), Encoding.UTF8.GetString(info.Features.Value.Span));
    }

    [Fact]
    public async Task Info_answers_without_features_when_runc_features_fails()
    {
        if (Prereqs.IsStockRuntime && ContainerdLines.Current.Major < 2)
        {
            OursOnly("containerd's own shim has -info from 2.0 on");
        }
        string shim = Prereqs.IsStockRuntime ? ContainerdLines.Current.StockShim : ShimPath;
        string dir = Path.Combine(Ctrd.Dir, "nofeatures");
        Directory.CreateDirectory(dir);
        string runtime = Path.Combine(dir, "runc");
        await File.WriteAllTextAsync(runtime, "#!/bin/sh\necho \"unknown command $1\" >&2\nexit 1\n", Ct);
        File.SetUnixFileMode(runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var options = Shim.Protos.TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = runtime });

        var r = await Command.RunAsync(shim, ["-info"], options.ToByteArray(), TimeSpan.FromSeconds(20), null, Ct);

        Assert.True(r.ExitCode == 0, r.Describe());
        var info = Containerd.Types.RuntimeInfo.Parser.ParseFrom(r.StdoutBytes);
        Assert.Equal(Runtime, info.Name);
        Assert.Null(info.Features);
        if (!Prereqs.IsStockRuntime)
        {
            // containerd's shim logs its warning where -info's log goes, not to stderr
            Assert.Contains(runtime, r.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Shim_cgroup_option_places_the_shim_and_its_oom_score_is_one_above_its_parents()
    {
        OursOnly("checked through a start driven by hand");
        string name = "rcs-shimcg-" + Guid.NewGuid().ToString("N")[..8];
        string[] dirs = [$"/sys/fs/cgroup/memory/{name}", $"/sys/fs/cgroup/pids/{name}"];
        foreach (var d in dirs)
        {
            Directory.CreateDirectory(d);
        }
        try
        {
            var options = Shim.Protos.TypeUrls.Pack(new Containerd.Runc.V1.Options { ShimCgroup = "/" + name });
            var (r, _) = await StartAsync("cg1", options.ToByteArray(), maxShimVersion: false);
            Assert.True(r.ExitCode == 0, r.Describe());
            string path = r.Stdout["unix://".Length..];
            await using (var client = await TtrpcClient.ConnectAsync(path, Ct))
            {
                var connect = await client.CallAsync("containerd.task.v2.Task", "Connect", new ConnectRequest(), ConnectResponse.Parser, TimeSpan.FromSeconds(10), null, Ct);
                string cgroups = await File.ReadAllTextAsync($"/proc/{connect.ShimPid}/cgroup", Ct);
                Assert.Contains($":memory:/{name}", cgroups, StringComparison.Ordinal);
                Assert.Contains($":pids:/{name}", cgroups, StringComparison.Ordinal);
                int own = int.Parse((await File.ReadAllTextAsync("/proc/self/oom_score_adj", Ct)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                int shim = int.Parse((await File.ReadAllTextAsync($"/proc/{connect.ShimPid}/oom_score_adj", Ct)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(Math.Min(own + 1, 1000), shim);
            }
            await ShutDownAsync(r.Stdout);
        }
        finally
        {
            foreach (var d in dirs)
            {
                await RemoveCgroupAsync(d);
            }
        }
    }

    /// <summary>Removes a cgroup made for a test; the shim leaves it when its process ends, a moment after Shutdown answered (bounded: 10 s).</summary>
    private static async Task RemoveCgroupAsync(string dir)
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            try
            {
                Directory.Delete(dir);
                return;
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (IOException)
            {
                await Task.Delay(50, CancellationToken.None);   // EBUSY: a process is still in it
            }
        }
    }
}
