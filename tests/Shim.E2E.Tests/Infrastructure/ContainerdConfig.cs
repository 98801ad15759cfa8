using System.Text;

namespace Shim.E2E.Tests;

/// <summary>
/// config.toml of a private containerd, per line: `version = 2` for 1.x, `version = 3` for 2.x
/// (where the CRI plugin is split into io.containerd.cri.v1.runtime / .images and NRI is on by
/// default with a machine-wide socket, so it is always disabled here). With CRI the handlers are
/// <c>runc</c> (stock shim, private runc root) and <c>runcsharp</c> (ours; no [options] table on
/// purpose: for a non-runc runtime_type CRI would send it as runtimeoptions.v1.Options). CRI's
/// streaming server (exec URLs) listens on 127.0.0.1 only, on a port of its own choosing.
/// </summary>
internal static class ContainerdConfig
{
    /// <summary>The CRI streaming server of Exec/Attach/PortForward URLs: loopback only, a free port (each daemon its own; the URL CRI hands out carries the port it got).</summary>
    private const string StreamServer = "disable_tcp_service = true\n    stream_server_address = \"127.0.0.1\"\n    stream_server_port = \"0\"\n    enable_tls_streaming = false";

    public static string Render(string dir, ContainerdLine line, bool cri)
    {
        var sb = new StringBuilder();
        var v3 = line.Major >= 2;
        string disabled = cri ? "[]"
            : v3 ? """["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.sandbox.controller.v1.shim"]"""
            : """["io.containerd.grpc.v1.cri"]""";
        var q = v3 ? "'" : "\"";   // plugin-name quoting as each line documents it (both are valid TOML)
        sb.Append($"""
            version = {(v3 ? 3 : 2)}
            root = "{dir}/root"
            state = "{dir}/state"
            disabled_plugins = {disabled}

            [grpc]
              address = "{dir}/c.sock"
            [ttrpc]
              address = "{dir}/c.sock.ttrpc"
            [debug]
              address = "{dir}/debug.sock"
              level = "debug"
            [metrics]
              address = ""

            [plugins]
              [plugins.{q}io.containerd.internal.v1.opt{q}]
                path = "{dir}/opt"
              [plugins.{q}io.containerd.nri.v1.nri{q}]
                disable = true

            """);
        if (v3)
        {
            sb.Append($"""
                  [plugins.'io.containerd.image-verifier.v1.bindir']
                    bin_dir = "{dir}/image-verifier"

                """);
        }
        if (!cri) { return sb.ToString(); }

        var cniBin = line.CniBinDir ?? "/usr/lib/cni";
        var binaryName = line.RuncPath is null ? "" : $"BinaryName = \"{line.RuncPath}\"";
        var ourPath = line.HonoursRuntimePath
            ? $"runtime_path = \"{Path.Combine(Prereqs.DistDir, Prereqs.ShimBinaryName(Prereqs.OurRuntime))}\""
            : "# 1.6 ignores runtime_path: the shim is found on the daemon's PATH (dist/ first)";
        if (v3)
        {
            sb.Append($"""
                  [plugins.'io.containerd.grpc.v1.cri']
                    {StreamServer}
                  [plugins.'io.containerd.cri.v1.images'.pinned_images]
                    sandbox = "{PrivateContainerd.SandboxImage}"
                  [plugins.'io.containerd.cri.v1.runtime']
                    enable_cdi = false
                    # no CAP_SYS_RESOURCE here: runc cannot give the pause container oom_score_adj -998
                    restrict_oom_score_adj = true
                  [plugins.'io.containerd.cri.v1.runtime'.cni]
                    bin_dirs = ["{cniBin}", "{dir}/cni-bin"]
                    conf_dir = "{dir}/cni"
                  [plugins.'io.containerd.cri.v1.runtime'.containerd]
                    default_runtime_name = "{PrivateContainerd.StockCriHandler}"
                  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{PrivateContainerd.StockCriHandler}]
                    runtime_type = "{Prereqs.StockRuntime}"
                  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{PrivateContainerd.StockCriHandler}.options]
                    Root = "{dir}/runc"
                    {binaryName}
                  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{PrivateContainerd.OurCriHandler}]
                    runtime_type = "{Prereqs.OurRuntime}"
                    {ourPath}
                  # the runtime under test as the pod's sandboxer (sandbox API), no pause container;
                  # no [options] table: 2.1 fails every container start of such a handler that has one
                  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{PrivateContainerd.SandboxerCriHandler}]
                    runtime_type = "{Prereqs.Runtime}"
                    sandboxer = "shim"
                    {(Prereqs.IsStockRuntime ? "" : ourPath)}
                  # the same, with a CNI network whose plugin fails every ADD (FailingCniPlugin)
                  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{PrivateContainerd.SandboxerFailingCniHandler}]
                    runtime_type = "{Prereqs.Runtime}"
                    sandboxer = "shim"
                    cni_conf_dir = "{dir}/cni-failing"
                    {(Prereqs.IsStockRuntime ? "" : ourPath)}

                """);
        }
        else
        {
            const string p = "plugins.\"io.containerd.grpc.v1.cri\"";
            sb.Append($"""
                  [{p}]
                    sandbox_image = "{PrivateContainerd.SandboxImage}"
                    {StreamServer}
                    # no CAP_SYS_RESOURCE here: runc cannot give the pause container oom_score_adj -998
                    restrict_oom_score_adj = true
                    [{p}.cni]
                      bin_dir = "{cniBin}"
                      conf_dir = "{dir}/cni"
                    [{p}.containerd]
                      default_runtime_name = "{PrivateContainerd.StockCriHandler}"
                      [{p}.containerd.runtimes.{PrivateContainerd.StockCriHandler}]
                        runtime_type = "{Prereqs.StockRuntime}"
                        [{p}.containerd.runtimes.{PrivateContainerd.StockCriHandler}.options]
                          Root = "{dir}/runc"
                          {binaryName}
                      [{p}.containerd.runtimes.{PrivateContainerd.OurCriHandler}]
                        runtime_type = "{Prereqs.OurRuntime}"
                        {ourPath}

                """);
        }
        return sb.ToString();
    }

    /// <summary>
    /// A CNI plugin (a shell script) that notes the netns of each ADD in <c>adds</c> beside itself
    /// and fails it, so a test can see CRI clean up after a failed pod network; DEL succeeds.
    /// </summary>
    public const string FailingCniPlugin = """
        #!/bin/sh
        here=$(dirname "$0")
        case "$CNI_COMMAND" in
          ADD) echo "$CNI_NETNS" >> "$here/adds"
               echo '{"cniVersion":"1.0.0","code":11,"msg":"rcs-fail: this network refuses every pod"}'
               exit 1 ;;
          VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
        esac
        exit 0

        """;

    /// <summary>The network of <see cref="FailingCniPlugin"/>.</summary>
    public const string FailingConflist = "{\"cniVersion\":\"1.0.0\",\"name\":\"rcs-fail\",\"plugins\":[{\"type\":\"rcs-fail\"}]}\n";

    /// <summary>
    /// CNI network for pods with their own netns: sid's `tap` plugin makes eth0 inside the pod
    /// netns only (this kernel has no `dummy` link type), `static` IPAM gives it a TEST-NET-1
    /// address. Nothing on the host side: no interface, route or iptables rule, no traffic.
    /// </summary>
    public static string TapConflist(string ip) =>
        "{\"cniVersion\":\"1.0.0\",\"name\":\"rcs-tap\",\"plugins\":[{\"type\":\"tap\",\"ipam\":{\"type\":\"static\",\"addresses\":[{\"address\":\""
        + ip + "/24\"}]}}]}\n";
}
