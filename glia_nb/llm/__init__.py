"""LLM clients (Anthropic, OpenAI, OpenAI-compatible servers) with tool use, retries and
token/dollar accounting, behind one provider-neutral interface.

Importing this package does not import the provider SDKs; a client does when built.
"""

from glia_nb.llm.accounting import UsageLedger
from glia_nb.llm.anthropic_client import AnthropicClient
from glia_nb.llm.base import LLMClient
from glia_nb.llm.clients import ClientSpec, client_from_info, make_client, parse_spec
from glia_nb.llm.fake import ScriptedClient
from glia_nb.llm.openai_client import OpenAIClient, OpenAICompatibleClient
from glia_nb.llm.pricing import PRICES, Cost, ModelPrice, context_window_for, cost_usd, lookup_price
from glia_nb.llm.retry import LLMConfigError, LLMError, RetryPolicy
from glia_nb.llm.types import Completion, Message, ToolCall, ToolSpec, Usage

__all__ = [
    "AnthropicClient",
    "ClientSpec",
    "Completion",
    "Cost",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "Message",
    "ModelPrice",
    "OpenAIClient",
    "OpenAICompatibleClient",
    "PRICES",
    "RetryPolicy",
    "ScriptedClient",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "UsageLedger",
    "client_from_info",
    "context_window_for",
    "cost_usd",
    "lookup_price",
    "make_client",
    "parse_spec",
]
