"""Build a residual IndRNN encoder into your own module (a frame classifier) and train it a few steps.

python egs/use_layer.py
"""

import torch
from torch import nn

from toolkit import nn as rnn


class FrameClassifier(nn.Module):
    def __init__(self, feat_dim: int = 40, classes: int = 5):
        super().__init__()
        budget = rnn.num_params("lstm", feat_dim, 64, 2)  # an LSTM of 2 x 64 units ...
        width = rnn.width_for_params("res_indrnn", budget, feat_dim, num_layers=5)  # ... and a res-IndRNN as large
        self.encoder = rnn.build("res_indrnn", feat_dim, width, num_layers=5, dropout=0.1)
        self.head = nn.Linear(self.encoder.output_size, classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y, _ = self.encoder(x, lengths)  # (B, T, width); zero at padded steps
        return self.head(y)


if __name__ == "__main__":
    torch.manual_seed(0)
    model = FrameClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)  # |u| stays bounded after every step, by itself
    x, lengths = torch.randn(8, 50, 40), torch.randint(20, 51, (8,))
    target = (x[..., :5].cumsum(1)).argmax(-1)  # class = the running-sum leader: needs memory
    for _ in range(30):
        logits = model(x, lengths)
        mask = torch.arange(50)[None] < lengths[:, None]
        loss = nn.functional.cross_entropy(logits[mask], target[mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
    params = sum(p.numel() for p in model.encoder.parameters())
    print(f"res_indrnn encoder: {params} parameters; frame loss after 30 steps: {loss.item():.3f}")
