"""The models: the LSTM (Tensor and scalar), the plain RNN, and the facts they share (`params`)."""
