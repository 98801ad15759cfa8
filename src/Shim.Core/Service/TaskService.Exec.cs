using System.Text.Json;
using Containerd.Task.V2;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Core.Processes;
using Shim.Core.Stdio;

namespace Shim.Core.Service;

public sealed partial class TaskService
{
    /// <summary>Exec: stores the OCI process spec (terminal forced to the request's); runc runs at Start.</summary>
    public Task<Empty> ExecAsync(ExecProcessRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("exec", request.Id, request.ExecId);
        _ = ct;
        var container = Get(request.Id);
        if (request.ExecId.Length == 0)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"exec in {request.Id}: exec id must not be empty");
        }
        if (request.Spec is null || request.Spec.Value.IsEmpty)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"exec {request.ExecId} in {request.Id}: no process spec given");
        }
        container.Init.ReserveExec(request.ExecId);
        byte[] spec;
        try
        {
            spec = WithTerminal(request.Spec.Value.Span, request.Terminal, request.ExecId);
        }
        catch
        {
            container.CompleteExec(request.ExecId, null);
            throw;
        }
        var exec = new ExecProcess(container, request.ExecId, new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal), spec);
        container.CompleteExec(request.ExecId, exec);
        _events.ExecAdded(container.Id, request.ExecId);
        return Task.FromResult(new Empty());
    }

    /// <summary>Rewrites the process JSON with "terminal" set as the request says (the Go shim does the same).</summary>
    internal static byte[] WithTerminal(ReadOnlySpan<byte> processJson, bool terminal, string execId)
    {
        try
        {
            using var doc = JsonDocument.Parse(processJson.ToArray());
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ShimException(ErrorKind.InvalidArgument, $"exec {execId}: process spec is not a JSON object");
            }
            using var buffer = new MemoryStream(processJson.Length + 32);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                foreach (var property in doc.RootElement.EnumerateObject())
                {
                    if (property.NameEquals("terminal"))
                    {
                        continue;
                    }
                    property.WriteTo(writer);
                }
                writer.WriteBoolean("terminal", terminal);
                writer.WriteEndObject();
            }
            return buffer.ToArray();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a name with a lone surrogate escape ("\ude00"), which JsonDocument
            // accepts and only reading it refuses (found by fuzz/run.sh exec-spec)
            throw new ShimException(ErrorKind.InvalidArgument, $"exec {execId}: process spec is not valid JSON: {ex.Message}", ex);
        }
    }
}
